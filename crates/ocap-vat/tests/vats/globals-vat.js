import { makeDefaultExo } from '@metamask/kernel-utils/exo';

/** The name of the error `thunk` throws, or 'no error'. */
const throwsName = thunk => {
  try {
    thunk();
    return 'no error';
  } catch (e) {
    return e.name;
  }
};

/**
 * Reports on the vat compartment's global object.
 */
export function buildRootObject() {
  return makeDefaultExo('root', {
    /** The names in `names` that this compartment's globalThis lacks. */
    missing(names) {
      return harden(names.filter(name => !(name in globalThis)));
    },
    /**
     * Whether the endowed constructors are the hardened intrinsics: frozen,
     * sharing the compartment's %TypedArray% (that of Int8Array), and
     * refusing writes.
     */
    floatArraysHardened() {
      const TypedArray = Object.getPrototypeOf(Int8Array);
      const report = {};
      for (const name of ['Float32Array', 'Float64Array']) {
        const ctor = globalThis[name];
        report[name] = harden({
          frozen: Object.isFrozen(ctor) && Object.isFrozen(ctor.prototype),
          sameTypedArray:
            Object.getPrototypeOf(ctor) === TypedArray &&
            Object.getPrototypeOf(ctor.prototype) === TypedArray.prototype,
          writeStatic: throwsName(() => {
            ctor.from = () => 'mine';
          }),
          writePrototype: throwsName(() => {
            ctor.prototype.fill = () => 'mine';
          }),
          writeTypedArray: throwsName(() => {
            TypedArray.prototype.set = () => 'mine';
          }),
          stillWorks: Array.from(ctor.from([1.5, 2.5]).fill(3)).join(','),
        });
      }
      return harden(report);
    },
  });
}
