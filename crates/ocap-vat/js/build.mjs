// Bundling driver, run by build.rs (and by `bundle_vat_source` for tests).
//
//   node build.mjs prelude <node_modules dir> <out.js>
//       SES + eventual-send shim + liveslots + our supervisor, one ES module.
//   node build.mjs vat <node_modules dir> <entry.js> <out.bundle>
//       A vat source file in the JS kernel's bundle format:
//       JSON {moduleFormat:"iife", code, exports, external}, where code
//       declares `var __vatExports__`.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const [mode, nodeModules, ...rest] = process.argv.slice(2);
if (!mode || !nodeModules) {
  console.error('usage: node build.mjs prelude|vat <node_modules> ...');
  process.exit(2);
}
const esbuild = await import(
  pathToFileURL(path.join(nodeModules, 'esbuild', 'lib', 'main.js')).href
);

const common = {
  bundle: true,
  write: false,
  platform: 'neutral',
  mainFields: ['module', 'main'],
  conditions: ['import', 'default'],
  nodePaths: [nodeModules],
  target: 'es2022',
  legalComments: 'none',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
};

// SES refuses to evaluate source text that merely looks like `import(` or an
// HTML comment, even inside strings (vat-side spec §4.3). Rewrite literal
// dynamic imports the way the JS kernel's bundler plugin does.
const removeDynamicImports = {
  name: 'remove-dynamic-imports',
  setup(build) {
    build.onLoad({ filter: /\.[cm]?[jt]s$/ }, async args => {
      const source = await readFile(args.path, 'utf8');
      if (!source.includes('import(')) return undefined;
      const contents = source.replace(
        /\bimport\(\s*(['"`])[^'"`]*\1\s*\)/g,
        'Promise.resolve({})',
      );
      const loader = args.path.endsWith('.ts') ? 'ts' : 'js';
      return { contents, loader };
    });
  },
};

if (mode === 'prelude') {
  const [out] = rest;
  const result = await esbuild.build({
    ...common,
    entryPoints: [path.join(here, 'src', 'prelude', 'index.js')],
    format: 'esm',
  });
  await writeFile(out, result.outputFiles[0].text);
} else if (mode === 'url') {
  // The `URL` endowment's code (core-js-pure's URL, ~170 KB), a module of its
  // own that a vat's runtime loads only when the vat asks for `URL` or
  // `URLSearchParams` (src/lazy_module.rs), instead of every vat carrying its
  // bytecode in the prelude.
  const [out] = rest;
  const result = await esbuild.build({
    ...common,
    entryPoints: [path.join(here, 'src', 'web', 'url-module.js')],
    format: 'esm',
  });
  await writeFile(out, result.outputFiles[0].text);
} else if (mode === 'vat') {
  const [entry, out] = rest;
  const result = await esbuild.build({
    ...common,
    entryPoints: [entry],
    format: 'iife',
    globalName: '__vatExports__',
    metafile: true,
    plugins: [removeDynamicImports],
    alias: {
      '@metamask/kernel-utils/exo': path.join(here, 'src', 'compat', 'kernel-utils-exo.js'),
    },
  });
  const code = result.outputFiles[0].text;
  const meta = Object.values(result.metafile.outputs)[0];
  const bundle = {
    moduleFormat: 'iife',
    code,
    exports: meta.exports ?? [],
    external: [],
  };
  await writeFile(out, JSON.stringify(bundle));
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
