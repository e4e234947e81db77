import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { testPki, type Issued } from '../../test/helpers/pki.js';
import { certInfo, commonName, subjectAltNames, subjectDn, verifyChain, type ChainOptions } from './x509.js';

describe('x509: chain verification against own anchors', () => {
  const pki = testPki();
  const c: Record<string, Issued> = {};
  const client = (): ChainOptions => ({ allowPartialChain: false, now: Date.now(), purpose: 'clientAuth' });
  const info = (name: string) => certInfo(c[name]!.cert);
  const verify = (leaf: string, sent: string[], trusted: string[], o: Partial<ChainOptions> = {}) =>
    verifyChain(info(leaf), sent.map(info), trusted.map(info), { ...client(), ...o });
  const reason = (v: ReturnType<typeof verifyChain>) => (v.ok ? 'ok' : v.reason);

  before(() => {
    c.root = pki.ca('root', { subject: '/CN=Root' });
    c.inter = pki.ca('inter', { subject: '/CN=Inter', issuer: c.root });
    c.leaf = pki.leaf('leaf', { subject: 'leaf', issuer: c.inter, usage: 'clientAuth' });
    c.direct = pki.leaf('direct', { subject: 'direct', issuer: c.root });
    c.tight = pki.ca('tight', { subject: '/CN=Tight Root', pathlen: 0 });
    c.tightInter = pki.ca('tight-inter', { subject: '/CN=Under Tight', issuer: c.tight });
    c.tightLeaf = pki.leaf('tight-leaf', { subject: 'x', issuer: c.tightInter });
    c.tightDirect = pki.leaf('tight-direct', { subject: 'y', issuer: c.tight });
    c.constrained = pki.ca('constrained', { subject: '/CN=Constrained', issuer: c.root, extensions: ['nameConstraints = critical,permitted;DNS:example.com'] });
    c.constrainedLeaf = pki.leaf('constrained-leaf', { subject: 'z', issuer: c.constrained, dns: ['a.example.com'] });
    c.oldInter = pki.ca('old-inter', { subject: '/CN=Old Inter', issuer: c.root, days: -1 });
    c.oldInterLeaf = pki.leaf('old-inter-leaf', { subject: 'w', issuer: c.oldInter });
    c.server = pki.leaf('server', { subject: 'srv', issuer: c.root, usage: 'serverAuth' });
    // Allowed to sign certificates by its key usage, but not a CA.
    c.notCa = pki.leaf('not-ca', { subject: '/CN=Not A CA', issuer: c.root, keyUsage: 'critical,digitalSignature,keyCertSign' });
    c.underLeaf = pki.leaf('under-leaf', { subject: 'u', issuer: c.notCa });
    c.names = pki.leaf('names', { subject: '/C=DE/O=Ex, Ample/CN=first', dns: ['a.example', 'b.example'], ip: ['10.0.0.1'], email: ['me@example.com'] });
  });

  it('reads the CA flag, path length and digest from the DER', () => {
    const root = info('root');
    assert.equal(root.ca, true);
    assert.equal(root.pathLen, undefined);
    assert.equal(root.selfSigned, true);
    assert.equal(info('tight').pathLen, 0);
    assert.equal(info('leaf').ca, false);
    assert.equal(info('leaf').selfSigned, false);
    assert.equal(root.digest, createHash('sha256').update(c.root!.x509.raw).digest('hex'));
    assert.deepEqual(info('constrained').unhandledCritical, ['2.5.29.30']);
  });

  it('a chain through a sent intermediate to a trusted root verifies; without the intermediate it does not', () => {
    const v = verify('leaf', ['inter'], ['root']);
    assert.ok(v.ok);
    assert.deepEqual(v.chain.map((x) => x.x509.subject), ['CN=leaf', 'CN=Inter', 'CN=Root']);
    assert.equal(reason(verify('leaf', [], ['root'])), 'unable to get local issuer certificate');
    assert.equal(reason(verify('direct', [], ['root'])), 'ok');
  });

  it('an untrusted or partial anchor is refused unless allowPartialChain', () => {
    assert.equal(reason(verify('leaf', ['inter', 'root'], ['inter'])), 'self-signed certificate in certificate chain');
    assert.equal(reason(verify('leaf', [], ['inter'], { allowPartialChain: true })), 'ok');
    assert.equal(reason(verify('leaf', ['inter'], ['tight'])), 'unable to get local issuer certificate');
  });

  it('path length constraints are enforced', () => {
    assert.equal(reason(verify('tightLeaf', ['tightInter'], ['tight'])), 'path length constraint exceeded');
    assert.equal(reason(verify('tightDirect', [], ['tight'])), 'ok');
  });

  it('name constraints are not evaluated, so a chain through them is refused', () => {
    assert.equal(reason(verify('constrainedLeaf', ['constrained'], ['root'])), 'unhandled critical extension 2.5.29.30');
  });

  it('an expired intermediate, a non-CA issuer and a leaf for another purpose are refused', () => {
    assert.equal(reason(verify('oldInterLeaf', ['oldInter'], ['root'])), 'issuer certificate has expired');
    assert.equal(reason(verify('underLeaf', ['notCa'], ['root'])), 'invalid CA certificate');
    assert.equal(reason(verify('server', [], ['root'])), 'certificate is not for clientAuth');
    assert.equal(reason(verify('server', [], ['root'], { purpose: 'serverAuth' })), 'ok');
    assert.equal(reason(verify('leaf', ['inter'], ['root'], { now: Date.now() + 10 * 86_400_000 })), 'certificate has expired');
    assert.equal(reason(verify('leaf', ['inter'], ['root'], { now: Date.now() - 86_400_000 })), 'certificate is not yet valid');
  });

  it('names: RFC 4514 subject, the first CN unescaped, DNS and email SANs in order', () => {
    const x = c.names!.x509;
    assert.equal(subjectDn(x), 'CN=first,O=Ex\\, Ample,C=DE');
    assert.equal(commonName(x), 'first');
    assert.deepEqual(subjectAltNames(x), ['a.example', 'b.example', 'me@example.com']);
    assert.deepEqual(subjectAltNames(c.root!.x509), []);
  });
});
