package api

import (
	_ "embed"

	"github.com/gofiber/fiber/v2"
)

// openAPIDoc is the OpenAPI 3.0 description of every route, served at /openapi.json.
//
//go:embed openapi.json
var openAPIDoc []byte

var openAPIETag = etagOf(openAPIDoc)

// handleOpenAPI serves GET /openapi.json.
func (s *Server) handleOpenAPI(c *fiber.Ctx) error {
	return s.sendJSON(c, openAPIDoc, openAPIETag)
}
