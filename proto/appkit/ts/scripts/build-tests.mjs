// Bundles each test/*.test.ts (with the kit and the generated code) into
// dist/test/*.test.cjs for `node --test`: esbuild resolves the generated
// code's imports from this package's node_modules.
import { build } from "esbuild";
import { readdirSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const tests = readdirSync(path.join(root, "test")).filter((f) => f.endsWith(".test.ts"));
rmSync(path.join(root, "dist/test"), { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: tests.map((f) => `test/${f}`),
  outdir: "dist/test",
  outExtension: { ".js": ".cjs" },
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  sourcemap: "inline",
  nodePaths: [path.join(root, "node_modules")],
  logLevel: "warning",
});
