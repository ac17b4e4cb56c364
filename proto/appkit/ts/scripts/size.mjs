// Measures the minified browser bundle of scripts/app-entry.ts (the kit,
// every service's client, connect-web) with esbuild, and how much of it
// is buf.validate. Building for the browser also proves that neither the
// kit nor the generated code needs Node.
//
//   node scripts/size.mjs [--gen DIR]
//
// --gen replaces proto/gen/ts (imported as ../../../gen/ts) with DIR (e.g. TypeScript generated from the
// full contract, validation rules included: kit_test.go makes one).
// Prints one JSON line: {"bytes": N, "validateBytes": N}.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const committed = path.resolve(root, "../../gen/ts");
const i = process.argv.indexOf("--gen");
const gen = i > 0 ? path.resolve(process.argv[i + 1]) : committed;

const swapGen = {
  name: "swap-gen",
  setup(b) {
    b.onResolve({ filter: /(^|\/)gen\/ts\// }, (args) => {
      const abs = path.resolve(args.resolveDir, args.path);
      const rel = path.relative(committed, abs);
      return { path: path.join(gen, rel.endsWith(".ts") ? rel : rel + ".ts") };
    });
  },
};

const res = await build({
  absWorkingDir: root,
  entryPoints: ["scripts/app-entry.ts"],
  bundle: true,
  minify: true,
  platform: "browser",
  format: "esm",
  target: "es2020",
  write: false,
  metafile: true,
  outfile: "dist/size/app.js",
  nodePaths: [path.join(root, "node_modules")],
  plugins: [swapGen],
  logLevel: "error",
});
const out = Object.values(res.metafile.outputs)[0];
let validateBytes = 0;
for (const [file, v] of Object.entries(out.inputs)) {
  if (file.includes("buf/validate/")) validateBytes += v.bytesInOutput;
}
console.log(JSON.stringify({ bytes: out.bytes, validateBytes }));
