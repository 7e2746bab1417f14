package api

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// schemaDoc is the parsed OpenAPI document with a validator for the subset of
// JSON Schema it uses: $ref, type, nullable, properties, required, items,
// additionalProperties, enum, oneOf, pattern, minLength, maxLength, and the
// extension x-contentSchema (a string holding JSON that this schema describes).
type schemaDoc struct {
	root map[string]any
}

func loadDoc(t *testing.T) *schemaDoc {
	t.Helper()
	var root map[string]any
	if err := json.Unmarshal(openAPIDoc, &root); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	return &schemaDoc{root: root}
}

// resolve follows a local "#/a/b" reference.
func (d *schemaDoc) resolve(ref string) (map[string]any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("unsupported $ref %q", ref)
	}
	var cur any = d.root
	for _, part := range strings.Split(ref[2:], "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("$ref %q: %q is not in an object", ref, part)
		}
		if cur, ok = m[part]; !ok {
			return nil, fmt.Errorf("$ref %q: no %q", ref, part)
		}
	}
	m, ok := cur.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("$ref %q is not an object", ref)
	}
	return m, nil
}

// deref resolves s while it is a reference.
func (d *schemaDoc) deref(s map[string]any) (map[string]any, error) {
	for i := 0; i < 10; i++ {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s, nil
		}
		var err error
		if s, err = d.resolve(ref); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("reference loop")
}

// validate returns the problems of v (decoded by encoding/json into any) against schema.
func (d *schemaDoc) validate(schema map[string]any, v any, path string) []string {
	s, err := d.deref(schema)
	if err != nil {
		return []string{path + ": " + err.Error()}
	}
	if v == nil {
		if s["nullable"] == true {
			return nil
		}
		return []string{path + ": null is not allowed"}
	}
	var errs []string
	if one, ok := s["oneOf"].([]any); ok {
		if e := d.validateOneOf(one, v, path); e != "" {
			errs = append(errs, e)
		}
	}
	if typ, ok := s["type"].(string); ok {
		okType := false
		switch typ {
		case "object":
			_, okType = v.(map[string]any)
		case "array":
			_, okType = v.([]any)
		case "string":
			_, okType = v.(string)
		case "boolean":
			_, okType = v.(bool)
		case "number":
			_, okType = v.(float64)
		case "integer":
			f, isNum := v.(float64)
			okType = isNum && f == math.Trunc(f)
		default:
			return []string{path + ": unsupported type " + typ}
		}
		if !okType {
			return []string{fmt.Sprintf("%s: %v (%T) is not of type %s", path, v, v, typ)}
		}
	}
	if enum, ok := s["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			if e == v {
				found = true
				break
			}
		}
		if !found {
			errs = append(errs, fmt.Sprintf("%s: %v is not one of %v", path, v, enum))
		}
	}
	if str, ok := v.(string); ok {
		errs = append(errs, d.validateString(s, str, path)...)
	}
	if obj, ok := v.(map[string]any); ok {
		props, _ := s["properties"].(map[string]any)
		for _, r := range asList(s["required"]) {
			if _, ok := obj[r]; !ok {
				errs = append(errs, path+": missing required property "+r)
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if ps, ok := props[k].(map[string]any); ok {
				errs = append(errs, d.validate(ps, obj[k], path+"."+k)...)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					errs = append(errs, path+": unexpected property "+k)
				}
			case map[string]any:
				errs = append(errs, d.validate(ap, obj[k], path+"."+k)...)
			}
		}
	}
	if arr, ok := v.([]any); ok {
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range arr {
				errs = append(errs, d.validate(items, e, path+"["+strconv.Itoa(i)+"]")...)
			}
		}
	}
	return errs
}

// validateOneOf returns a problem unless v matches exactly one of the schemas.
func (d *schemaDoc) validateOneOf(schemas []any, v any, path string) string {
	var matched int
	var all []string
	for i, o := range schemas {
		om, _ := o.(map[string]any)
		errs := d.validate(om, v, path)
		if len(errs) == 0 {
			matched++
		}
		all = append(all, fmt.Sprintf("[%d] %s", i, strings.Join(errs, "; ")))
	}
	if matched != 1 {
		return fmt.Sprintf("%s: matches %d of oneOf, not 1: %s", path, matched, strings.Join(all, " | "))
	}
	return ""
}

// validateString checks pattern, minLength and maxLength (in characters, as JSON
// Schema counts) and x-contentSchema.
func (d *schemaDoc) validateString(s map[string]any, v, path string) []string {
	var errs []string
	n := float64(utf8.RuneCountInString(v))
	if m, ok := s["minLength"].(float64); ok && n < m {
		errs = append(errs, fmt.Sprintf("%s: %d characters, fewer than %v", path, int(n), m))
	}
	if m, ok := s["maxLength"].(float64); ok && n > m {
		errs = append(errs, fmt.Sprintf("%s: %d characters, more than %v", path, int(n), m))
	}
	if p, ok := s["pattern"].(string); ok {
		re, err := goRegexp(p)
		if err != nil {
			errs = append(errs, path+": "+err.Error())
		} else if !re.MatchString(v) {
			errs = append(errs, fmt.Sprintf("%s: %q does not match %s", path, truncate(v), p))
		}
	}
	if cs, ok := s["x-contentSchema"].(map[string]any); ok {
		var inner any
		if err := json.Unmarshal([]byte(v), &inner); err != nil {
			errs = append(errs, fmt.Sprintf("%s: not JSON: %v", path, err))
		} else {
			errs = append(errs, d.validate(cs, inner, path+"(json)")...)
		}
	}
	return errs
}

// goRegexp compiles an OpenAPI (ECMA-262) pattern of the subset the document
// uses with Go's regexp: \uXXXX escapes become \x{XXXX}.
func goRegexp(p string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(regexp.MustCompile(`\\u([0-9A-Fa-f]{4})`).ReplaceAllString(p, `\x{$1}`))
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", p, err)
	}
	return re, nil
}

func asList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// responseSchema returns the schema the document gives for a route, status and
// media type, or an error when it documents no such response.
func (d *schemaDoc) responseSchema(path string, status int, media string) (map[string]any, error) {
	paths, _ := d.root["paths"].(map[string]any)
	item, ok := paths[path].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("path %s is not documented", path)
	}
	op, ok := item["get"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("path %s has no get", path)
	}
	responses, _ := op["responses"].(map[string]any)
	r, ok := responses[strconv.Itoa(status)].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: status %d is not documented", path, status)
	}
	r, err := d.deref(r)
	if err != nil {
		return nil, err
	}
	content, _ := r["content"].(map[string]any)
	mt, ok := content[media].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s %d: no %s content", path, status, media)
	}
	schema, ok := mt["schema"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s %d: no schema", path, status)
	}
	return schema, nil
}

func TestValidatorRejects(t *testing.T) {
	d := loadDoc(t)
	stats := map[string]any{"$ref": "#/components/schemas/Stats"}
	good := `{"stats":{"a.org":1},"total":1,"window":"all","by":"domain","as_of":null,"updated_at":null,"freshness_seconds":null,"namespace":"live"}`
	cases := map[string]string{
		"count is a string":   `{"stats":{"a.org":"1"},"total":1,"window":"all","by":"domain","as_of":null,"updated_at":null,"freshness_seconds":null,"namespace":"live"}`,
		"total is fractional": `{"stats":{},"total":1.5,"window":"all","by":"domain","as_of":null,"updated_at":null,"freshness_seconds":null,"namespace":"live"}`,
		"bad window":          `{"stats":{},"total":1,"window":"7m","by":"domain","as_of":null,"updated_at":null,"freshness_seconds":null,"namespace":"live"}`,
		"missing namespace":   `{"stats":{},"total":1,"window":"all","by":"domain","as_of":null,"updated_at":null,"freshness_seconds":null}`,
		"extra property":      `{"stats":{},"total":1,"window":"all","by":"domain","as_of":null,"updated_at":null,"freshness_seconds":null,"namespace":"live","x":1}`,
		"null namespace":      `{"stats":{},"total":1,"window":"all","by":"domain","as_of":null,"updated_at":null,"freshness_seconds":null,"namespace":null}`,
		"types not an object": `{"stats":{},"total":1,"window":"all","by":"domain","as_of":null,"updated_at":null,"freshness_seconds":null,"namespace":"live","types":[]}`,
	}
	var v any
	json.Unmarshal([]byte(good), &v)
	if errs := d.validate(stats, v, "$"); len(errs) > 0 {
		t.Fatalf("a valid body is rejected: %v", errs)
	}
	for name, body := range cases {
		var v any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatal(err)
		}
		if errs := d.validate(stats, v, "$"); len(errs) == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
	var items any
	json.Unmarshal([]byte(`{"window":"1h","as_of":null,"from":null,"namespace":"x","items":[{"domain":"a","title":"b"}]}`), &items)
	if errs := d.validate(map[string]any{"$ref": "#/components/schemas/TopPages"}, items, "$"); len(errs) == 0 {
		t.Error("an item without count is accepted")
	}
}

func TestOpenAPIDocument(t *testing.T) {
	d := loadDoc(t)
	if v, _ := d.root["openapi"].(string); !strings.HasPrefix(v, "3.0") {
		t.Errorf("openapi version %q", v)
	}
	paths, _ := d.root["paths"].(map[string]any)
	for _, r := range routes {
		if _, ok := paths[r]; !ok {
			t.Errorf("route %s is not documented", r)
		}
	}
	if len(paths) != len(routes) {
		t.Errorf("%d documented paths, %d routes", len(paths), len(routes))
	}
	// The documented query parameters are exactly those each route accepts.
	specs := map[string]*paramSpec{
		"/stats": &statsSpec, "/stats/stream": &streamSpec, "/stats/timeseries": &timeseriesSpec,
		"/stats/top/pages": &topPagesSpec, "/stats/top/editors": &topEditorsSpec, eventStreamRoute: &eventStreamSpec,
	}
	for path, item := range paths {
		op := item.(map[string]any)["get"].(map[string]any)
		var names []string
		params, _ := op["parameters"].([]any)
		for _, p := range params {
			pm, err := d.deref(p.(map[string]any))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if pm["in"] == "query" {
				names = append(names, pm["name"].(string))
			}
		}
		var want []string
		if spec := specs[path]; spec != nil {
			want = append(want, spec.names...)
		}
		sort.Strings(names)
		sort.Strings(want)
		if strings.Join(names, ",") != strings.Join(want, ",") {
			t.Errorf("%s documents parameters %v, accepts %v", path, names, want)
		}
		// Every $ref in the operation resolves.
		checkRefs(t, d, path, op)
	}
}

func checkRefs(t *testing.T, d *schemaDoc, where string, v any) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["$ref"].(string); ok {
			target, err := d.resolve(ref)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				return
			}
			checkRefs(t, d, ref, target)
		}
		for k, e := range x {
			if k != "$ref" {
				checkRefs(t, d, where, e)
			}
		}
	case []any:
		for _, e := range x {
			checkRefs(t, d, where, e)
		}
	}
}

// TestOpenAPIConformance checks that real responses of every route, successes and
// errors, validate against the schemas the document gives them.
func TestOpenAPIConformance(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f.base, nil)
	dead := newServer(t, f.base, func(c *Config) { c.Redis.URL = "redis://127.0.0.1:1/0" })
	d := loadDoc(t)
	cases := []struct {
		srv    *Server
		target string
		status int
	}{
		{s, "/stats", 200},
		{s, "/stats?window=1h&by=wiki&top=5", 200},
		{s, "/stats?by=namespace&window=24h", 200},
		{s, "/stats?by=editor&bot=false", 200},
		{s, "/stats?window=5m&type=edit&bot=true&by=bot", 200},
		{s, "/stats?window=9h", 400},
		{dead, "/stats", 503},
		{dead, "/stats?window=5m", 503},
		{s, "/stats/timeseries", 200},
		{s, "/stats/timeseries?window=15m&by=domain&top=3", 200},
		{s, "/stats/timeseries?window=all", 400},
		{dead, "/stats/timeseries", 503},
		{s, "/stats/top/pages", 200},
		{s, "/stats/top/pages?window=24h&wiki=enwiki", 200},
		{s, "/stats/top/pages?top=0", 400},
		{dead, "/stats/top/pages", 503},
		{s, "/stats/top/editors?window=5m", 200},
		{s, "/stats/top/editors?domain=commons.wikimedia.org", 200},
		{s, "/stats/top/editors?window=forever", 400},
		{dead, "/stats/top/editors", 503},
		{s, "/stats/stream?interval=0", 400},
		{s, "/healthz", 200},
		{s, "/readyz", 200},
		{dead, "/readyz", 503},
		{s, "/openapi.json", 200},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s_%d", tc.target, tc.status), func(t *testing.T) {
			r := get(t, tc.srv, tc.target)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			path, _, _ := strings.Cut(tc.target, "?")
			schema, err := d.responseSchema(path, r.status, "application/json")
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal(r.body, &v); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			for _, e := range d.validate(schema, v, "$") {
				t.Error(e)
			}
		})
	}
	// Unknown routes and methods answer with the documented Error schema.
	errSchema := map[string]any{"$ref": "#/components/schemas/Error"}
	for _, r := range []response{get(t, s, "/stats/nope"), do(t, s, http.MethodDelete, "/stats")} {
		var v any
		if err := json.Unmarshal(r.body, &v); err != nil {
			t.Fatalf("%d body is not JSON: %v", r.status, err)
		}
		for _, e := range d.validate(errSchema, v, "$") {
			t.Errorf("%d: %s", r.status, e)
		}
	}
	// A 304 is documented wherever an ETag is sent.
	for _, p := range []string{"/stats", "/stats/timeseries", "/stats/top/pages", "/stats/top/editors", "/healthz", "/readyz", "/openapi.json"} {
		item := d.root["paths"].(map[string]any)[p].(map[string]any)["get"].(map[string]any)
		if _, ok := item["responses"].(map[string]any)["304"]; !ok {
			t.Errorf("%s: 304 not documented", p)
		}
	}
}

// TestParametersAgreeWithServer checks that the patterns and lengths the document
// gives wiki, domain and interval accept exactly what the server accepts: every
// Unicode character in a filter value, lengths counted in characters, and every
// short interval string.
func TestParametersAgreeWithServer(t *testing.T) {
	d := loadDoc(t)
	filter, err := d.resolve("#/components/schemas/FilterValue")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"wiki", "domain"} {
		p, _ := d.resolve("#/components/parameters/" + name)
		if ref, _ := p["schema"].(map[string]any)["$ref"].(string); ref != "#/components/schemas/FilterValue" {
			t.Errorf("%s's schema is %v, not FilterValue", name, p["schema"])
		}
	}
	re, err := goRegexp(filter["pattern"].(string))
	if err != nil {
		t.Fatal(err)
	}
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if utf8.ValidRune(r) {
			v := "a" + string(r) + "b"
			if spec, server := re.MatchString(v), checkFilter("wiki", v) == nil; spec != server {
				t.Errorf("%U: the document accepts it %v, the server %v", r, spec, server)
			}
		}
	}
	for _, v := range []string{"", "a", strings.Repeat("é", 255), strings.Repeat("é", 256), strings.Repeat("a", 256), strings.Repeat("𝕎", 255), "en.wikipedia.org", "x\xffy"} {
		spec := len(d.validate(filter, v, "$")) == 0
		if server := checkFilter("domain", v) == nil; spec != server && utf8.ValidString(v) {
			t.Errorf("%d characters %.20q: the document accepts it %v, the server %v", utf8.RuneCountInString(v), v, spec, server)
		}
	}
	ip, _ := d.resolve("#/components/parameters/interval")
	interval := ip["schema"].(map[string]any)
	values := []string{"", "18446744075", "9223372036854775807", "100", "060", "1m", "1000ms", "60s", "61s"}
	const alphabet = "0123456789s+-. m"
	var grow func(prefix string, n int)
	grow = func(prefix string, n int) {
		values = append(values, prefix)
		if n > 0 {
			for _, c := range alphabet {
				grow(prefix+string(c), n-1)
			}
		}
	}
	grow("", 3)
	accepted := map[string]bool{}
	for _, v := range values {
		spec := len(d.validate(interval, v, "$")) == 0
		_, err := parseInterval(v)
		if server := err == nil; spec != server {
			t.Errorf("interval %q: the document accepts it %v, the server %v", v, spec, server)
		}
		if spec {
			accepted[v] = true
		}
	}
	if len(accepted) != 120 { // 1..60, each with and without s
		t.Errorf("%d interval strings accepted, want 120", len(accepted))
	}
}
