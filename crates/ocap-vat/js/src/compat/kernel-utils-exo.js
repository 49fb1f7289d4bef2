// `@metamask/kernel-utils/exo` for vat bundles.
//
// The npm releases of @metamask/kernel-utils (0.1.0, 0.3.0) do not ship the
// `./exo` subpath that JS-kernel vats import, so the vat bundler
// (build.mjs, mode `vat`) aliases that specifier to this file. It follows
// packages/kernel-utils/src/exo.ts (spec vat-side §7.4).
import { makeExo } from '@endo/exo';
import { M } from '@endo/patterns';

/**
 * The interface guard of a default exo: any passable arguments and result.
 *
 * @param {string} name
 */
export const makeDefaultInterface = name =>
  M.interface(name, {}, { defaultGuards: 'passable' });

/**
 * A hardened remotable with interface `Alleged: <name>`.
 *
 * @param {string} name
 * @param {Record<string, Function>} methods
 * @param {any} [interfaceGuard]
 */
export const makeDefaultExo = (
  name,
  methods,
  interfaceGuard = makeDefaultInterface(name),
) => makeExo(name, interfaceGuard, methods);
