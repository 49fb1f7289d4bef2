// `harden`, installed before SES loads.
//
// SES adopts a `globalThis.harden` that exists when it loads (its
// makeHardener: "Use a native hardener if possible", the path XS takes).
// This is SES's own algorithm (ses/src/make-hardener.js, 2.3.0), written for
// a bytecode interpreter: no per-call closures, no uncurried `apply`
// wrappers, and an early exit for roots that are already hardened. The
// semantics are the same: freeze (typed arrays: preventExtensions and
// non-index properties made read-only), then visit the prototype and every
// own property's value or accessor functions; mark everything hardened only
// once the whole graph is frozen (a failure leaves nothing marked); repair
// V8-style own `stack` accessors of errors as SES does.
//
// It captures the intrinsics it uses now, before any other code runs. Vat
// code never reaches `hardened` or the traversal state. Method lookups on
// the WeakSet and Set instances go to %WeakSet.prototype% and
// %Set.prototype%, which lockdown freezes before any vat code runs.

import { host } from './00-host.js';

const {
  freeze,
  getOwnPropertyDescriptor,
  getOwnPropertyDescriptors,
  getPrototypeOf,
  preventExtensions,
  defineProperty,
  hasOwn,
} = Object;
const { apply, ownKeys } = Reflect;
const { isInteger } = Number;

const typedArrayTag = getOwnPropertyDescriptor(
  getPrototypeOf(Uint8Array.prototype),
  Symbol.toStringTag,
).get;

// SES's FERAL_STACK_GETTER / FERAL_STACK_SETTER (ses/src/commons.js).
const errorStackDesc = getOwnPropertyDescriptor(Error('obligatory'), 'stack');
const typeErrorStackDesc = getOwnPropertyDescriptor(TypeError('obligatory'), 'stack');
let feralStackGetter;
if (typeErrorStackDesc && typeErrorStackDesc.get) {
  if (
    errorStackDesc &&
    typeof typeErrorStackDesc.get === 'function' &&
    typeErrorStackDesc.get === errorStackDesc.get &&
    typeof typeErrorStackDesc.set === 'function' &&
    typeErrorStackDesc.set === errorStackDesc.set
  ) {
    feralStackGetter = typeErrorStackDesc.get;
  } else {
    throw TypeError(
      'Unexpected Error own stack accessor functions (SES_UNEXPECTED_ERROR_OWN_STACK_ACCESSOR)',
    );
  }
}
const errorPrototype = Error.prototype;
const isError = value => {
  // As SES's isError: an object whose prototype chain reaches Error.prototype.
  let p = value;
  while (p !== null && p !== undefined) {
    p = getPrototypeOf(p);
    if (p === errorPrototype) return true;
  }
  return false;
};

const isPrimitive = val =>
  !val || (typeof val !== 'object' && typeof val !== 'function');

const isCanonicalIntegerIndexString = propertyKey => {
  const n = +String(propertyKey);
  return isInteger(n) && String(n) === propertyKey;
};

const freezeTypedArray = array => {
  preventExtensions(array);
  for (const name of ownKeys(array)) {
    const desc = getOwnPropertyDescriptor(array, name);
    if (!desc) throw TypeError('harden: missing typed array property descriptor');
    if (!isCanonicalIntegerIndexString(name)) {
      defineProperty(array, name, { ...desc, writable: false, configurable: false });
    }
  }
};

const hardened = new WeakSet();

const enqueue = (toFreeze, val) => {
  if (isPrimitive(val)) return;
  const type = typeof val;
  if (type !== 'object' && type !== 'function') {
    throw TypeError(`Unexpected typeof: ${type}`);
  }
  if (hardened.has(val) || toFreeze.has(val)) return;
  toFreeze.add(val);
};

const freezeAndTraverse = (toFreeze, obj) => {
  if (feralStackGetter !== undefined && isError(obj)) {
    const stackDesc = getOwnPropertyDescriptor(obj, 'stack');
    if (stackDesc && stackDesc.get === feralStackGetter && stackDesc.configurable) {
      defineProperty(obj, 'stack', { value: apply(feralStackGetter, obj, []) });
    }
  }
  if (apply(typedArrayTag, obj, []) !== undefined) {
    freezeTypedArray(obj);
  } else {
    freeze(obj);
  }
  const descs = getOwnPropertyDescriptors(obj);
  enqueue(toFreeze, getPrototypeOf(obj));
  for (const name of ownKeys(descs)) {
    const desc = descs[name];
    if (hasOwn(desc, 'value')) {
      enqueue(toFreeze, desc.value);
    } else {
      enqueue(toFreeze, desc.get);
      enqueue(toFreeze, desc.set);
    }
  }
};

/**
 * @template T
 * @param {T} root
 * @returns {T}
 */
const harden = root => {
  if (isPrimitive(root) || hardened.has(root)) return root;
  const toFreeze = new Set();
  enqueue(toFreeze, root);
  // A Set iterator also visits the values added while iterating.
  for (const obj of toFreeze) freezeAndTraverse(toFreeze, obj);
  for (const obj of toFreeze) hardened.add(obj);
  return root;
};

// The native twin (src/harden.rs), when the engine needs no error stack
// repair (QuickJS-ng's errors have no own `stack` accessor). It shares
// `hardened` and uses our `freezeTypedArray` for typed arrays.
globalThis.harden =
  feralStackGetter === undefined && typeof host.makeNativeHarden === 'function'
    ? host.makeNativeHarden(
        hardened,
        WeakSet.prototype.has,
        WeakSet.prototype.add,
        freezeTypedArray,
      )
    : harden;
