import { makeDefaultExo } from '@metamask/kernel-utils/exo';

// Probes of the realm's `harden` (the native one, src/harden.rs), as vat
// code sees it. Every method returns plain data.
export function buildRootObject() {
  return makeDefaultExo('root', {
    deep() {
      class Point {
        constructor(x) {
          this.x = x;
        }

        norm() {
          return this.x;
        }
      }
      const secret = Symbol('secret');
      const inner = { list: [1, { leaf: true }] };
      const getter = () => inner;
      const hidden = {};
      const root = {
        inner,
        point: new Point(1),
        get viaGetter() {
          return getter();
        },
        [secret]: { bySymbol: true },
        fn() {},
      };
      Object.defineProperty(root, 'nonEnumerable', { value: hidden, enumerable: false });
      const returned = harden(root);
      const accessor = Object.getOwnPropertyDescriptor(root, 'viaGetter').get;
      return [
        returned === root,
        Object.isFrozen(root),
        Object.isFrozen(inner),
        Object.isFrozen(inner.list),
        Object.isFrozen(inner.list[1]),
        Object.isFrozen(root.point),
        Object.isFrozen(Point.prototype),
        Object.isFrozen(Point),
        Object.isFrozen(accessor),
        Object.isFrozen(root[secret]),
        Object.isFrozen(hidden),
        Object.isFrozen(root.fn),
        Object.isFrozen(root.fn.prototype),
      ];
    },
    /** Frozen is not hardened: harden still walks what a frozen object holds. */
    /**
     * Objects that look like the leaves harden.rs keeps out of its WeakSet (a function, a
     * promise or a short array, frozen, holding only primitives, whose prototype is a
     * hardened intrinsic) but are not: harden must still walk and freeze what hangs from
     * them. Each answer is true when it did.
     */
    leafLookalikes() {
      const frozenAll = (...xs) => xs.every(x => Object.isFrozen(x));
      // A frozen function whose prototype is not hardened.
      const proto = { inner: {} };
      const f1 = () => 1;
      Object.setPrototypeOf(f1, proto);
      Object.freeze(f1);
      harden(f1);
      // A frozen array holding an object.
      const element = {};
      const a1 = Object.freeze([1, element]);
      harden(a1);
      // A function made non-extensible but not frozen (its `name` stays configurable).
      const f2 = () => 2;
      Object.preventExtensions(f2);
      harden(f2);
      // A frozen function with an accessor.
      const f3 = () => 3;
      const getter = () => 'got';
      Object.defineProperty(f3, 'g', { get: getter });
      Object.freeze(f3);
      harden(f3);
      // A frozen promise with an object on it.
      const p = Promise.resolve(4);
      const extra = {};
      p.extra = extra;
      Object.freeze(p);
      harden(p);
      // A frozen function with a symbol-keyed object.
      const f4 = () => 5;
      const hidden = {};
      f4[Symbol.for('hidden')] = hidden;
      Object.freeze(f4);
      harden(f4);
      // Arrays at the size limit and past it, each holding an object at the end.
      const tail7 = {};
      const a7 = Object.freeze([1, 2, 3, 4, 5, 6, tail7]);
      harden(a7);
      const tail8 = {};
      const a8 = Object.freeze([1, 2, 3, 4, 5, 6, 7, tail8]);
      harden(a8);
      // Leaves themselves: hardened, and a graph through them is hardened whole.
      const leafFn = harden(() => 6);
      const leafArray = harden([1, 'two']);
      const leafPromise = harden(Promise.resolve(7));
      const around = { leafFn, leafArray, leafPromise, more: {} };
      harden(around);
      return [
        frozenAll(proto, proto.inner),
        frozenAll(element),
        frozenAll(f2) && !Object.getOwnPropertyDescriptor(f2, 'name').configurable,
        frozenAll(getter),
        frozenAll(extra),
        frozenAll(hidden),
        frozenAll(tail7),
        frozenAll(tail8),
        frozenAll(leafFn, leafArray, leafPromise, around, around.more),
        harden(leafFn) === leafFn && harden(leafArray) === leafArray,
      ];
    },
    frozenButNotHardened() {
      const child = { leaf: {} };
      const outer = Object.freeze({ child });
      const before = Object.isFrozen(child);
      harden(outer);
      return [before, Object.isFrozen(child), Object.isFrozen(child.leaf)];
    },
    /** Graphs past the traversal's small-graph scan: shared and cyclic. */
    largeGraphs() {
      const shared = { s: true };
      const list = Array.from({ length: 1000 }, (_, i) => ({ i, shared, inner: [i] }));
      harden(list);
      const ring = Array.from({ length: 200 }, (_, i) => ({ i }));
      ring.forEach((node, i) => {
        node.next = ring[(i + 1) % ring.length];
      });
      harden(ring[0]);
      return [
        list.every(o => Object.isFrozen(o) && Object.isFrozen(o.inner)),
        Object.isFrozen(shared),
        ring.every(o => Object.isFrozen(o)),
      ];
    },
    primitives() {
      function f() {}
      return [
        harden(1),
        harden('s'),
        harden(null),
        harden(undefined) === undefined,
        harden(true),
        Object.isFrozen(harden(f)) && Object.isFrozen(f.prototype),
      ];
    },
    typedArray() {
      const bytes = new Uint8Array(2);
      bytes.extra = 'x';
      harden(bytes);
      bytes[0] = 7; // elements stay writable, as in SES
      let expando = '';
      try {
        bytes.extra = 'y';
      } catch (error) {
        expando = error.name;
      }
      let added = '';
      try {
        bytes.more = 1;
      } catch (error) {
        added = error.name;
      }
      return [bytes[0], bytes.extra, expando, added, Object.isExtensible(bytes)];
    },
    proxies() {
      const log = [];
      const target = { a: { b: 1 } };
      const proxy = new Proxy(target, {
        ownKeys(t) {
          log.push('ownKeys');
          return Reflect.ownKeys(t);
        },
        getOwnPropertyDescriptor(t, k) {
          log.push(`gopd:${String(k)}`);
          return Reflect.getOwnPropertyDescriptor(t, k);
        },
        getPrototypeOf(t) {
          log.push('getPrototypeOf');
          return Reflect.getPrototypeOf(t);
        },
      });
      harden(proxy);
      const refusing = new Proxy(
        { x: {} },
        {
          preventExtensions() {
            return false;
          },
        },
      );
      let refused = '';
      try {
        harden({ ok: {}, refusing });
      } catch (error) {
        refused = error.name;
      }
      return [Object.isFrozen(target), Object.isFrozen(target.a), log.includes('ownKeys'), log.includes('getPrototypeOf'), log.includes('gopd:a'), refused];
    },
    mutateAfterHarden() {
      const o = harden({ a: [1] });
      let error = '';
      try {
        o.a.push(2);
      } catch (e) {
        error = e.name;
      }
      return [error, o.a.length];
    },
  });
}
