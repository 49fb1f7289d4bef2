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
