export function buildRootObject() {
  throw Error('from buildRootObject');
}
