// The client side of FxA's onepw protocol and of the scoped-keys OAuth
// extension, in WebCrypto. It mirrors weave's Go package accounts/onepw
// (and accounts/jwe.go); the Go tests check both against the protocol's
// published vectors, so any change here must keep them equal.
'use strict';
(function (global) {
  const subtle = global.crypto.subtle;
  const utf8 = new TextEncoder();
  const PREFIX = 'identity.mozilla.com/picl/v1/';
  const KW = name => PREFIX + name;
  const OLDSYNC = 'https://identity.mozilla.com/apps/oldsync';

  function hex(bytes) {
    return Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('');
  }
  function unhex(s) {
    if (typeof s !== 'string' || !/^(?:[0-9a-fA-F]{2})*$/.test(s)) {
      throw new Error('not hex');
    }
    const out = new Uint8Array(s.length / 2);
    for (let i = 0; i < out.length; i++) {
      out[i] = parseInt(s.substr(i * 2, 2), 16);
    }
    return out;
  }
  function b64url(bytes) {
    let s = '';
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function unb64url(s) {
    if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) {
      throw new Error('not base64url');
    }
    const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
    return Uint8Array.from(bin, c => c.charCodeAt(0));
  }
  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let i = 0;
    for (const p of parts) {
      out.set(p, i);
      i += p.length;
    }
    return out;
  }
  function xor(a, b) {
    if (a.length !== b.length) throw new Error('xor of unequal lengths');
    return a.map((x, i) => x ^ b[i]);
  }
  function u32(n) {
    return new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
  }
  async function sha256(bytes) {
    return new Uint8Array(await subtle.digest('SHA-256', bytes));
  }
  async function hmac(key, data) {
    const k = await subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    return new Uint8Array(await subtle.sign('HMAC', k, data));
  }

  // HKDF-SHA256 with an empty salt, as every derivation of the protocol.
  async function hkdf(ikm, info, length) {
    const k = await subtle.importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
    const bits = await subtle.deriveBits(
      { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: utf8.encode(info) }, k, length * 8);
    return new Uint8Array(bits);
  }

  // stretch: quickStretchedPW = PBKDF2(password, "…quickStretch:"+email,
  // 1000 rounds); authPW (sent) and unwrapBKey (kept) are HKDFs of it.
  // The email is used exactly as the account stores it: it is the salt.
  async function stretch(email, password) {
    const pw = await subtle.importKey('raw', utf8.encode(password), 'PBKDF2', false, ['deriveBits']);
    const qs = new Uint8Array(await subtle.deriveBits(
      { name: 'PBKDF2', hash: 'SHA-256', salt: utf8.encode(KW('quickStretch:') + email), iterations: 1000 }, pw, 256));
    return {
      quickStretchedPW: qs,
      authPW: await hkdf(qs, KW('authPW'), 32),
      unwrapBKey: await hkdf(qs, KW('unwrapBkey'), 32),
    };
  }

  // deriveToken splits HKDF(token, "…"+name) into the Hawk id, the Hawk
  // key and, for keyFetchToken, the key that seals the account/keys bundle.
  async function deriveToken(token, name) {
    const b = await hkdf(token, KW(name), 96);
    return { id: b.slice(0, 32), hmacKey: b.slice(32, 64), extra: b.slice(64) };
  }

  // openBundle checks the bundle's HMAC and removes the HKDF XOR stream.
  async function openBundle(key, name, bundle) {
    if (bundle.length < 32) throw new Error('bundle too short');
    const ct = bundle.slice(0, -32);
    const mac = bundle.slice(-32);
    const k = await hkdf(key, KW(name), 32 + ct.length);
    const want = await hmac(k.slice(0, 32), ct);
    let diff = 0;
    for (let i = 0; i < 32; i++) diff |= want[i] ^ mac[i];
    if (diff !== 0) throw new Error('bundle MAC mismatch');
    return xor(ct, k.slice(32));
  }

  // unwrapKeys turns the account/keys bundle into kA and kB.
  async function unwrapKeys(keyFetchToken, bundle, unwrapBKey) {
    const t = await deriveToken(keyFetchToken, 'keyFetchToken');
    const pt = await openBundle(t.extra, 'account/keys', bundle);
    if (pt.length !== 64) throw new Error('bundle is not kA‖wrapKb');
    return { kA: pt.slice(0, 32), kB: xor(pt.slice(32), unwrapBKey) };
  }

  // oldsyncKey is the scoped key of the oldsync scope, derived the legacy
  // way Firefox derives it: k = HKDF(kB, "…oldsync", 64) (the sync key
  // bundle), kid = "<keyRotationTimestamp>-<b64url(sha256(kB)[:16])>".
  async function oldsyncKey(kB, keyRotationTimestamp) {
    if (typeof keyRotationTimestamp !== 'number' || !(keyRotationTimestamp > 0)) {
      throw new Error('bad keyRotationTimestamp');
    }
    const fp = (await sha256(kB)).slice(0, 16);
    return {
      kid: String(keyRotationTimestamp) + '-' + b64url(fp),
      k: b64url(await hkdf(kB, KW('oldsync'), 64)),
      kty: 'oct',
      scope: OLDSYNC,
    };
  }

  // parseJWK reads keys_jwk (base64url JSON of a P-256 public JWK) and
  // imports it; anything else is refused before a password is asked for.
  async function parseJWK(b64) {
    const jwk = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(unb64url(b64)));
    if (!jwk || jwk.kty !== 'EC' || jwk.crv !== 'P-256' || unb64url(jwk.x).length !== 32 || unb64url(jwk.y).length !== 32) {
      throw new Error('keys_jwk is not a P-256 public key');
    }
    const clean = { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y };
    const key = await subtle.importKey('jwk', clean, { name: 'ECDH', namedCurve: 'P-256' }, false, []);
    return { jwk: clean, kid: typeof jwk.kid === 'string' ? jwk.kid : undefined, key };
  }

  // encryptJWE makes the compact JWE Firefox's jwcrypto decrypts: alg
  // ECDH-ES with a fresh ephemeral key, Concat KDF (SHA-256, empty
  // PartyU/VInfo) to a 256-bit key, enc A256GCM with the encoded header as
  // additional data and no encrypted key part.
  async function encryptJWE(peer, plaintext) {
    const eph = await subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits']);
    const z = new Uint8Array(await subtle.deriveBits({ name: 'ECDH', public: peer.key }, eph.privateKey, 256));
    const epk = await subtle.exportKey('jwk', eph.publicKey);
    const header = { alg: 'ECDH-ES', enc: 'A256GCM', epk: { kty: 'EC', crv: 'P-256', x: epk.x, y: epk.y } };
    if (peer.kid !== undefined) header.kid = peer.kid;
    const cek = await sha256(concat(u32(1), z, u32(7), utf8.encode('A256GCM'), u32(0), u32(0), u32(256)));
    const h = b64url(utf8.encode(JSON.stringify(header)));
    const key = await subtle.importKey('raw', cek, 'AES-GCM', false, ['encrypt']);
    const iv = global.crypto.getRandomValues(new Uint8Array(12));
    const sealed = new Uint8Array(await subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: utf8.encode(h), tagLength: 128 }, key, plaintext));
    return h + '..' + b64url(iv) + '.' + b64url(sealed.slice(0, -16)) + '.' + b64url(sealed.slice(-16));
  }

  // pkceChallenge is S256(verifier), for the plain-web OAuth case.
  async function pkceChallenge(verifier) {
    return b64url(await sha256(utf8.encode(verifier)));
  }

  global.WeaveOnepw = Object.freeze({
    OLDSYNC, hex, unhex, b64url, unb64url, xor, hkdf, stretch, deriveToken, openBundle,
    unwrapKeys, oldsyncKey, parseJWK, encryptJWE, pkceChallenge, sha256,
  });
})(window);
