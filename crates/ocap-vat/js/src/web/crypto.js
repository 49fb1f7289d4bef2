// crypto / SubtleCrypto: randomness and digests come from the Rust host
// (`getrandom`, RustCrypto's sha1/sha2). Only `digest` is implemented in
// SubtleCrypto; every other method rejects with a NotSupportedError.
import { host } from '../prelude/00-host.js';
import { makeDOMError } from './abort.js';

const { freeze, getOwnPropertyDescriptor, getPrototypeOf } = Object;

const typedArrayTag = getOwnPropertyDescriptor(
  getPrototypeOf(Uint8Array.prototype),
  Symbol.toStringTag,
).get;

const INTEGER_ARRAYS = new Set([
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'BigInt64Array',
  'BigUint64Array',
]);

const MAX_RANDOM_BYTES = 65536;

const getRandomValues = array => {
  const tag = ArrayBuffer.isView(array) ? typedArrayTag.call(array) : undefined;
  if (!INTEGER_ARRAYS.has(tag)) {
    throw makeDOMError(
      "Failed to execute 'getRandomValues' on 'Crypto': The provided ArrayBufferView is not an integer array type",
      'TypeMismatchError',
    );
  }
  if (array.byteLength > MAX_RANDOM_BYTES) {
    throw makeDOMError(
      `Failed to execute 'getRandomValues' on 'Crypto': The ArrayBufferView's byte length (${array.byteLength}) exceeds the number of bytes of entropy available via this API (${MAX_RANDOM_BYTES})`,
      'QuotaExceededError',
    );
  }
  const bytes = new Uint8Array(host.randomBytes(array.byteLength));
  new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(bytes);
  return array;
};

const HEX = [];
for (let i = 0; i < 256; i += 1) HEX.push(i.toString(16).padStart(2, '0'));

const randomUUID = () => {
  const b = new Uint8Array(host.randomBytes(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = i => HEX[b[i]];
  return `${h(0)}${h(1)}${h(2)}${h(3)}-${h(4)}${h(5)}-${h(6)}${h(7)}-${h(8)}${h(9)}-${h(10)}${h(11)}${h(12)}${h(13)}${h(14)}${h(15)}`;
};

/** A copy of a BufferSource's bytes, as an ArrayBuffer. */
export const bufferSourceCopy = (data, what) => {
  if (data instanceof ArrayBuffer) return data.slice(0);
  if (ArrayBuffer.isView(data)) {
    return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
  }
  throw TypeError(`${what}: expected an ArrayBuffer or an ArrayBufferView`);
};

const DIGESTS = new Set(['SHA-1', 'SHA-256', 'SHA-384', 'SHA-512']);

const notSupported = name =>
  async function unsupported() {
    throw makeDOMError(
      `SubtleCrypto.${name} is not supported by this vat worker (only digest is)`,
      'NotSupportedError',
    );
  };

let constructing = false;

// eslint-disable-next-line no-shadow
class SubtleCrypto {
  constructor() {
    if (!constructing) throw TypeError('Illegal constructor');
  }

  // eslint-disable-next-line class-methods-use-this
  async digest(algorithm, data) {
    const name = String(
      typeof algorithm === 'object' && algorithm !== null ? algorithm.name : algorithm,
    ).toUpperCase();
    if (!DIGESTS.has(name)) {
      throw makeDOMError(`Unrecognized digest algorithm: ${name}`, 'NotSupportedError');
    }
    return host.digest(name, bufferSourceCopy(data, 'SubtleCrypto.digest'));
  }
}
for (const name of [
  'encrypt',
  'decrypt',
  'sign',
  'verify',
  'generateKey',
  'deriveKey',
  'deriveBits',
  'importKey',
  'exportKey',
  'wrapKey',
  'unwrapKey',
]) {
  Object.defineProperty(SubtleCrypto.prototype, name, {
    value: notSupported(name),
    writable: true,
    configurable: true,
  });
}

// eslint-disable-next-line no-shadow
class Crypto {
  #subtle;

  constructor(subtle) {
    if (!constructing) throw TypeError('Illegal constructor');
    this.#subtle = subtle;
  }

  get subtle() {
    return this.#subtle;
  }

  // eslint-disable-next-line class-methods-use-this
  getRandomValues(array) {
    return getRandomValues(array);
  }

  // eslint-disable-next-line class-methods-use-this
  randomUUID() {
    return randomUUID();
  }
}

/** A fresh `{crypto, SubtleCrypto}` pair (one per vat). */
export const makeCryptoEndowments = () => {
  constructing = true;
  try {
    const subtle = freeze(new SubtleCrypto());
    return { crypto: freeze(new Crypto(subtle)), SubtleCrypto };
  } finally {
    constructing = false;
  }
};
