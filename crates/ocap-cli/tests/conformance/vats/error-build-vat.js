/** Throws from `buildRootObject` (the JS kernel's error-build-throw vat). */
export function buildRootObject() {
  throw Error('thrown from buildRootObject of error-build-vat');
}
