// Bundles the conformance vats with Vite (npm), in the JS kernel's configuration.
//
//   node build.mjs <out-dir> <vat.js>...
//
// writes <out-dir>/<name>.bundle for each <name>.js. Used by ../conformance.rs; run `npm ci`
// in this directory first.
//
// What this reproduces (spec vat-side.md §4.3, host-surface.md §8.5): `bundleVat(sourcePath)`
// from packages/kernel-utils/src/vite-plugins/bundle-vat.ts is "a Vite library build: entry =
// source, format `iife`, global name `__vatExports__`; named exports, no code splitting, not
// minified", with `process.env.NODE_ENV` inlined as "production", literal `import('x')`
// rewritten to `Promise.resolve({})` ("because IIFE output forbids dynamic import"), comments
// stripped ("because SES rejects the text `import(` even inside comments"), and the entry
// chunk's exports recorded. Builds are serialised ("Rolldown's IIFE mode is not re-entrant"):
// here they simply run one after the other. The output is the VatBundle JSON of §4.2:
// {moduleFormat: 'iife', code, exports, external}.
//
// One deliberate difference: `@metamask/kernel-utils/exo` is resolved to ocap's compat module
// (crates/ocap-vat/js/src/compat/kernel-utils-exo.js), because no npm release of
// @metamask/kernel-utils ships that subpath; our own bundler does the same (ocap-vat
// `vat_aliases`). Its imports (`@endo/exo`, `@endo/patterns`) resolve from this directory's
// node_modules (`resolve.dedupe`), so every package in a bundle comes from package-lock.json.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));
const kernelUtilsExo = path.resolve(
  here,
  '../../../ocap-vat/js/src/compat/kernel-utils-exo.js',
);

// bundle-vat.ts's removeDynamicImportsPlugin: literal specifiers only; a computed `import(x)`
// is left alone (and Rolldown will then refuse the IIFE output, as in the JS kernel).
const removeDynamicImports = () => ({
  name: 'conformance:remove-dynamic-imports',
  transform(code, id) {
    if (!/\bimport\s*\(/u.test(code)) {
      return null;
    }
    const out = code.replace(
      /\bimport\s*\(\s*(['"`])[^'"`]+\1\s*\)/gu,
      'Promise.resolve({})',
    );
    if (out === code) {
      this.warn(`${id}: a dynamic import() with a computed specifier remains`);
      return null;
    }
    return { code: out, map: null };
  },
});

/**
 * One vat, as `bundleVat` builds it.
 *
 * @param {string} entry - absolute path of the vat source
 */
async function bundleVat(entry) {
  const result = await build({
    configFile: false,
    logLevel: 'warn',
    root: here,
    define: { 'process.env.NODE_ENV': JSON.stringify('production') },
    resolve: {
      alias: { '@metamask/kernel-utils/exo': kernelUtilsExo },
      dedupe: ['@endo/exo', '@endo/patterns'],
    },
    build: {
      write: false,
      minify: false,
      lib: { entry, formats: ['iife'], name: '__vatExports__' },
      rolldownOptions: {
        output: {
          exports: 'named',
          codeSplitting: false,
          // The JS kernel strips comments from the final chunk (its stripCommentsPlugin);
          // Rolldown can do it while rendering.
          comments: false,
        },
        // ... and the `// <module id>` line Rolldown puts before each module.
        experimental: { attachDebugInfo: 'none' },
        plugins: [removeDynamicImports()],
      },
    },
  });
  const output = Array.isArray(result) ? result[0] : result;
  const chunk = output.output.find(o => o.type === 'chunk' && o.isEntry);
  if (!chunk) {
    throw new Error(`Vite produced no entry chunk for ${entry}`);
  }
  if (!chunk.code.includes('var __vatExports__')) {
    throw new Error(`${entry}: the IIFE does not declare __vatExports__`);
  }
  return {
    moduleFormat: 'iife',
    code: chunk.code,
    exports: [...chunk.exports].sort(),
    // Everything is inlined: an IIFE chunk imports nothing.
    external: [...chunk.imports],
  };
}

const [outDir, ...entries] = process.argv.slice(2);
if (!outDir || entries.length === 0) {
  console.error('usage: node build.mjs <out-dir> <vat.js>...');
  process.exit(2);
}
await mkdir(outDir, { recursive: true });
for (const entry of entries) {
  const bundle = await bundleVat(path.resolve(entry));
  const name = path.basename(entry).replace(/\.[cm]?[jt]s$/u, '');
  const out = path.join(outDir, `${name}.bundle`);
  await writeFile(out, JSON.stringify(bundle));
  console.log(`Wrote ${out}: ${bundle.code.length} bytes of code`);
}
