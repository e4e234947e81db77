import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizePath, removeDotSegments } from '../src/lib/path.js';

test('unreserved percent-escapes are decoded, others upper-cased', () => {
  assert.equal(normalizePath('/%61%62c'), '/abc');
  assert.equal(normalizePath('/a%2fb'), '/a%2Fb');
  assert.equal(normalizePath('/a%7E'), '/a~');
  assert.equal(normalizePath('/caf%c3%a9'), '/caf%C3%A9');
});

test('dot segments are removed, including encoded dots', () => {
  assert.equal(normalizePath('/a/b/../c'), '/a/c');
  assert.equal(normalizePath('/a/./b/'), '/a/b/');
  assert.equal(normalizePath('/a/%2e%2e/admin'), '/admin');
  assert.equal(normalizePath('/../../etc'), '/etc');
  assert.equal(normalizePath('/a/..'), '/');
  assert.equal(removeDotSegments('/a/b/.'), '/a/b/');
});

test('malformed paths are refused', () => {
  assert.equal(normalizePath('/a%zz'), undefined);
  assert.equal(normalizePath('/a%2'), undefined);
  assert.equal(normalizePath('a/b'), undefined);
  assert.equal(normalizePath('/a b'), undefined);
  assert.equal(normalizePath('/a"b'), undefined);
});

test('plain paths come back unchanged (same string)', () => {
  const p = '/users/42/orders';
  assert.equal(normalizePath(p), p);
});
