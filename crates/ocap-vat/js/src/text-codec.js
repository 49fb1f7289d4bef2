// Minimal UTF-8 TextEncoder / TextDecoder for vats that request them
// (QuickJS has none built in).

const encodeUtf8 = (input = '') => {
  const str = String(input);
  const out = [];
  for (let i = 0; i < str.length; i += 1) {
    let cp = str.codePointAt(i);
    if (cp > 0xffff) i += 1;
    else if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd; // lone surrogate
    if (cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
    else if (cp < 0x10000)
      out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
    else
      out.push(
        0xf0 | (cp >> 18),
        0x80 | ((cp >> 12) & 63),
        0x80 | ((cp >> 6) & 63),
        0x80 | (cp & 63),
      );
  }
  return new Uint8Array(out);
};

const decodeUtf8 = (bytes, fatal) => {
  let s = '';
  let i = 0;
  const bad = () => {
    if (fatal) throw TypeError('The encoded data was not valid for encoding utf-8');
    s += '\ufffd';
    i += 1;
  };
  while (i < bytes.length) {
    const b = bytes[i];
    let need = 0;
    let cp = 0;
    let min = 0;
    if (b < 0x80) {
      s += String.fromCharCode(b);
      i += 1;
      continue;
    } else if (b >= 0xc2 && b < 0xe0) [need, cp, min] = [1, b & 31, 0x80];
    else if (b >= 0xe0 && b < 0xf0) [need, cp, min] = [2, b & 15, 0x800];
    else if (b >= 0xf0 && b < 0xf5) [need, cp, min] = [3, b & 7, 0x10000];
    else {
      bad();
      continue;
    }
    if (i + need >= bytes.length) {
      bad();
      continue;
    }
    let ok = true;
    for (let k = 1; k <= need; k += 1) {
      const c = bytes[i + k];
      if ((c & 0xc0) !== 0x80) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (c & 63);
    }
    if (!ok || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      bad();
      continue;
    }
    s += String.fromCodePoint(cp);
    i += need + 1;
  }
  return s;
};

const toBytes = input => {
  if (input === undefined) return new Uint8Array(0);
  if (input instanceof Uint8Array) return input;
  if (ArrayBuffer.isView(input)) {
    return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  }
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  throw TypeError('The "input" argument must be an ArrayBuffer or ArrayBufferView');
};

export const makeTextEncoder = () =>
  class TextEncoder {
    get encoding() {
      return 'utf-8';
    }

    encode(input = '') {
      return encodeUtf8(input);
    }

    encodeInto(input, dest) {
      const bytes = encodeUtf8(input);
      const n = Math.min(bytes.length, dest.length);
      dest.set(bytes.subarray(0, n));
      return { read: n === bytes.length ? String(input).length : undefined, written: n };
    }
  };

export const makeTextDecoder = () =>
  class TextDecoder {
    #fatal;

    #ignoreBOM;

    constructor(label = 'utf-8', options = {}) {
      const l = String(label).toLowerCase();
      if (l !== 'utf-8' && l !== 'utf8' && l !== 'unicode-1-1-utf-8') {
        throw RangeError(`The "${label}" encoding is not supported`);
      }
      this.#fatal = Boolean(options && options.fatal);
      this.#ignoreBOM = Boolean(options && options.ignoreBOM);
    }

    get encoding() {
      return 'utf-8';
    }

    get fatal() {
      return this.#fatal;
    }

    get ignoreBOM() {
      return this.#ignoreBOM;
    }

    decode(input) {
      let bytes = toBytes(input);
      if (!this.#ignoreBOM && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
        bytes = bytes.subarray(3);
      }
      return decodeUtf8(bytes, this.#fatal);
    }
  };
