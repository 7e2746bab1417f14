// vendor.mjs copies the dist files the page uses out of node_modules (installed
// from package-lock.json by `npm ci`) into static/vendor, where go:embed finds
// them. uPlot's minified IIFE build becomes an ES module by exporting the global
// it declares; its licence travels with it.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";

const src = "node_modules/uplot";
const out = "static/vendor";
const { version } = JSON.parse(readFileSync(`${src}/package.json`, "utf8"));
mkdirSync(out, { recursive: true });
const iife = readFileSync(`${src}/dist/uPlot.iife.min.js`, "utf8");
if (!iife.includes("var uPlot=")) {
  throw new Error("uPlot.iife.min.js no longer declares var uPlot: check the build");
}
writeFileSync(`${out}/uplot.js`, `${iife.trimEnd()}\nexport default uPlot;\n`);
writeFileSync(`${out}/uplot.min.css`, readFileSync(`${src}/dist/uPlot.min.css`));
writeFileSync(
  `${out}/uplot.LICENSE.txt`,
  `uPlot ${version} (https://github.com/leeoniya/uPlot), from the npm package uplot@${version}.\n\n` +
    readFileSync(`${src}/LICENSE`, "utf8"),
);
console.log(`vendored uplot ${version} into ${out}`);
