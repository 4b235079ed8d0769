// A real OpenID provider (panva's oidc-provider, v9) for VRE integration tests. TEST ONLY.
//
//   node server.mjs --port <PORT> --state <DIR> [--audience vre] [--typ at+jwt] [--watch-stdin]
//
// * Listens on 127.0.0.1 only. Issuer: http://127.0.0.1:<PORT>/ (trailing slash, like IAM).
//   Discovery: <issuer>.well-known/openid-configuration; JWKS: <issuer>jwk; token: <issuer>token.
// * Access tokens are RS256 JWTs with IAM's WLCG-profile claims: iss, sub, aud, exp, nbf, iat,
//   jti, client_id, scope (always), wlcg.ver "1.0", preferred_username (users only), and
//   wlcg.groups (users only, and, as in IAM, only when the scope contains "wlcg.groups").
//   Like IAM, the JWS header is {alg, kid} with no "typ" unless --typ is given.
// * Grants at <issuer>token (client authentication: HTTP Basic):
//     client_credentials                                    sub = client_id
//     password (test-only: username + password)             sub = the user's stable subject
//     urn:ietf:params:oauth:grant-type:token-exchange (RFC 8693, impersonation as in IAM)
//   Parameters: scope (taken verbatim), audience (space-separated; `resource` is an alias;
//   default --audience), and test knobs: expires_in (seconds, may be <= 0 for an already
//   expired token), not_before (seconds from now for nbf, may be > 0), extra_claims (a JSON
//   object merged into the claims last; a null value deletes that claim).
// * Authorization code + PKCE for the public client `vre-web` (the gateway's browser sign-in),
//   through the library's development login/consent pages (login = a user's subject).
// * Test admin endpoints on the same port:
//     POST /__test__/rotate[?keep_old=1]  new RSA key with a new kid becomes the signing key;
//                                         the old keys leave the JWKS unless keep_old=1
//     GET  /__test__/state                issuer, signing kid, published kids, users
// * <DIR> receives provider.json (issuer, port, pid, signing kid) once the server listens.
// * With --watch-stdin the process exits when its stdin closes (the parent died).

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    state: { type: 'string' },
    audience: { type: 'string', default: 'vre' },
    typ: { type: 'string' },
    'watch-stdin': { type: 'boolean', default: false },
  },
  strict: true,
});

if (!args.port || !/^\d+$/.test(args.port) || Number(args.port) < 1 || Number(args.port) > 65535) {
  console.error('usage: node server.mjs --port <PORT> --state <DIR> [--audience vre] [--typ at+jwt]');
  process.exit(2);
}
const HOST = '127.0.0.1';
const PORT = Number(args.port);
const ISSUER = `http://${HOST}:${PORT}/`;
const DEFAULT_AUDIENCE = args.audience;
const STATE_DIR = args.state ? path.resolve(args.state) : undefined;
const DEFAULT_TTL = 3600; // IAM's default access-token lifetime
const API_RESOURCE = 'urn:vre:api';

const GT_PASSWORD = 'password';
const GT_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const TT_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const TT_JWT = 'urn:ietf:params:oauth:token-type:jwt';

// ---- users and clients (test fixtures; the Python side reads them from /__test__/state) ----

const USERS = {
  alice: {
    sub: '6f0c7c5e-8a51-4d2e-9a1b-a11ce0000001',
    password: 'alice-password',
    name: 'Alice Liddell',
    email: 'alice@example.org',
    groups: ['/vre', '/vre/alpha'],
  },
  bob: {
    sub: '0b7a4d0e-3c1f-4b8e-8f2d-b0b000000002',
    password: 'bob-password',
    name: 'Bob Builder',
    email: 'bob@example.org',
    groups: ['/vre', '/vre/beta'],
  },
  carol: {
    sub: 'c4a01e2b-7d6f-4f3a-9c5e-ca1010000003',
    password: 'carol-password',
    name: 'Carol Danvers',
    email: 'carol@example.org',
    groups: ['/other'],
  },
  admin: {
    sub: 'ad0a1b2c-5e6f-4a7b-8c9d-ad0100000004',
    password: 'admin-password',
    name: 'Ada Admin',
    email: 'admin@example.org',
    groups: ['/vre', '/vre/admins'],
  },
};
const USERS_BY_SUB = new Map(Object.entries(USERS).map(([username, u]) => [u.sub, { username, ...u }]));

const CLIENTS = [
  {
    // the main confidential client: every grant, token exchange enabled
    client_id: 'vre-test',
    client_secret: 'vre-test-secret',
    grant_types: ['client_credentials', GT_PASSWORD, GT_TOKEN_EXCHANGE],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  },
  {
    // the browser sign-in of the gateway: a public client, authorization code + PKCE, refresh
    // tokens; a loopback redirect URI whose port is not compared (RFC 8252 §7.3)
    client_id: 'vre-web',
    application_type: 'native',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/auth/callback'],
    token_endpoint_auth_method: 'none',
  },
  {
    // a second client WITHOUT token exchange (for "grant not allowed" tests)
    client_id: 'vre-other',
    client_secret: 'vre-other-secret',
    grant_types: ['client_credentials', GT_PASSWORD],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  },
];

// ---- keys ----

let keyCounter = 0;
function newSigningKey() {
  keyCounter += 1;
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const kid = `vre-test-${keyCounter}-${crypto.randomBytes(6).toString('base64url')}`;
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
}

function publicKeyFor(kid) {
  const jwk = currentKeys.find((k) => k.kid === kid);
  return jwk ? crypto.createPublicKey({ key: jwk, format: 'jwk' }) : undefined;
}

// currentKeys[0] signs; all of currentKeys are published.
let currentKeys = [newSigningKey()];

// ---- helpers used by the grants ----

function b64json(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

// Verify one of our own RS256 access tokens (for token exchange).
function verifyOwnToken(token) {
  const parts = typeof token === 'string' ? token.split('.') : [];
  if (parts.length !== 3) throw new errors.InvalidGrant('subject_token is not a JWS');
  let header;
  let claims;
  try {
    header = b64json(parts[0]);
    claims = b64json(parts[1]);
  } catch {
    throw new errors.InvalidGrant('subject_token is not a JWS');
  }
  if (header.alg !== 'RS256') throw new errors.InvalidGrant('subject_token alg is not RS256');
  const key = publicKeyFor(header.kid);
  if (!key) throw new errors.InvalidGrant('subject_token kid is not a current key');
  const ok = crypto.verify(
    'RSA-SHA256',
    Buffer.from(`${parts[0]}.${parts[1]}`),
    key,
    Buffer.from(parts[2], 'base64url'),
  );
  if (!ok) throw new errors.InvalidGrant('subject_token signature is invalid');
  if (claims.iss !== ISSUER) throw new errors.InvalidGrant('subject_token issuer mismatch');
  const now = Math.floor(Date.now() / 1000);
  if (typeof claims.exp !== 'number' || claims.exp <= now) throw new errors.InvalidGrant('subject_token is expired');
  if (typeof claims.nbf === 'number' && claims.nbf > now + 60) throw new errors.InvalidGrant('subject_token is not yet valid');
  return claims;
}

function parseIntParam(ctx, name) {
  const raw = ctx.oidc.params[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^-?\d+$/.test(raw)) throw new errors.InvalidRequest(`${name} must be an integer`);
  return Number(raw);
}

function parseExtraClaims(ctx) {
  const raw = ctx.oidc.params.extra_claims;
  if (raw === undefined || raw === '') return undefined;
  let value;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new errors.InvalidRequest('extra_claims must be a JSON object');
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new errors.InvalidRequest('extra_claims must be a JSON object');
  }
  return value;
}

function requestedAudiences(ctx) {
  const raw = ctx.oidc.params.audience ?? ctx.oidc.params.resource;
  const list = (raw ?? DEFAULT_AUDIENCE).split(' ').filter(Boolean);
  if (!list.length) throw new errors.InvalidTarget('audience must not be empty');
  return list;
}

function resourceServerFor(provider, audience) {
  return new provider.ResourceServer(audience, resourceServerInfo(audience));
}

function resourceServerInfo(audience) {
  return {
    audience,
    scope: '',
    accessTokenFormat: 'jwt',
    accessTokenTTL: DEFAULT_TTL,
    jwt: { sign: { alg: 'RS256' } },
  };
}

// Common tail of every grant: per-request knobs, save, respond.
async function issue(ctx, token, extra = {}) {
  const audiences = requestedAudiences(ctx);
  const expiresIn = parseIntParam(ctx, 'expires_in') ?? DEFAULT_TTL;
  const notBefore = parseIntParam(ctx, 'not_before') ?? 0;
  const extraClaims = parseExtraClaims(ctx);

  token.resourceServer = resourceServerFor(ctx.oidc.provider, audiences[0]);
  token.expiresIn = Math.max(1, expiresIn);
  // read by formats.customizers.jwt below
  ctx.vreTokenKnobs = {
    audiences, expiresIn, notBefore, extraClaims,
  };

  ctx.oidc.entity(token.kind, token);
  const value = await token.save();
  ctx.body = {
    access_token: value,
    token_type: 'Bearer',
    expires_in: expiresIn,
    scope: token.scope || '',
    ...extra,
  };
}

function scopeParam(ctx, fallback = '') {
  const raw = ctx.oidc.params.scope;
  return (raw === undefined ? fallback : raw).split(' ').filter(Boolean).join(' ');
}

const KNOBS = ['scope', 'audience', 'resource', 'expires_in', 'not_before', 'extra_claims'];

async function clientCredentialsGrant(ctx) {
  const { ClientCredentials } = ctx.oidc.provider;
  const token = new ClientCredentials({ client: ctx.oidc.client, scope: scopeParam(ctx) || undefined });
  await issue(ctx, token);
}

async function passwordGrant(ctx) {
  const { username, password } = ctx.oidc.params;
  if (!username || !password) throw new errors.InvalidRequest('username and password are required');
  const user = Object.hasOwn(USERS, username) ? USERS[username] : undefined;
  if (!user || user.password !== password) throw new errors.InvalidGrant('invalid username or password');
  const { AccessToken } = ctx.oidc.provider;
  const token = new AccessToken({
    accountId: user.sub,
    client: ctx.oidc.client,
    gty: GT_PASSWORD,
    scope: scopeParam(ctx) || undefined,
  });
  await issue(ctx, token);
}

async function tokenExchangeGrant(ctx) {
  const { subject_token: subjectToken, subject_token_type: subjectTokenType } = ctx.oidc.params;
  const requestedType = ctx.oidc.params.requested_token_type;
  if (!subjectToken) throw new errors.InvalidRequest('subject_token is required');
  if (subjectTokenType !== TT_ACCESS_TOKEN && subjectTokenType !== TT_JWT) {
    throw new errors.InvalidRequest('unsupported subject_token_type');
  }
  if (requestedType !== undefined && requestedType !== TT_ACCESS_TOKEN) {
    throw new errors.InvalidRequest('unsupported requested_token_type');
  }
  const subject = verifyOwnToken(subjectToken);
  const scope = scopeParam(ctx, subject.scope ?? '');
  const { AccessToken, ClientCredentials } = ctx.oidc.provider;
  let token;
  if (USERS_BY_SUB.has(subject.sub)) {
    token = new AccessToken({
      accountId: subject.sub,
      client: ctx.oidc.client,
      gty: 'token-exchange',
      scope: scope || undefined,
    });
  } else {
    // a client's own token (sub = its client_id): the result is again a client token
    token = new ClientCredentials({ client: ctx.oidc.client, scope: scope || undefined });
  }
  await issue(ctx, token, { issued_token_type: TT_ACCESS_TOKEN });
}

// ---- the provider ----

// A tiny in-process store (the provider's built-in one prints a production warning). It only
// holds issued-token records and would hold sessions/grants if a browser flow were used.
const STORE = new Map();
class TestAdapter {
  constructor(model) { this.model = model; }

  key(id) { return `${this.model}:${id}`; }

  async upsert(id, payload, expiresIn) {
    const now = Date.now();
    if (STORE.size > 5000) {
      for (const [k, v] of STORE) if (v.expiresAt <= now) STORE.delete(k);
    }
    const expiresAt = typeof expiresIn === 'number' ? now + expiresIn * 1000 : Infinity;
    STORE.set(this.key(id), { payload, expiresAt });
  }

  async find(id) {
    const entry = STORE.get(this.key(id));
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      STORE.delete(this.key(id));
      return undefined;
    }
    return entry.payload;
  }

  async findByUserCode(userCode) {
    for (const [k, v] of STORE) {
      if (k.startsWith(`${this.model}:`) && v.payload.userCode === userCode) return this.find(k.slice(this.model.length + 1));
    }
    return undefined;
  }

  async findByUid(uid) {
    for (const [k, v] of STORE) {
      if (k.startsWith(`${this.model}:`) && v.payload.uid === uid) return this.find(k.slice(this.model.length + 1));
    }
    return undefined;
  }

  async consume(id) {
    const entry = STORE.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { STORE.delete(this.key(id)); }

  async revokeByGrantId(grantId) {
    for (const [k, v] of STORE) if (v.payload.grantId === grantId) STORE.delete(k);
  }
}

function createProvider(jwks) {
  const provider = new Provider(ISSUER, {
    adapter: TestAdapter,
    clients: CLIENTS,
    jwks: { keys: jwks },
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    routes: { jwks: '/jwk', token: '/token', userinfo: '/userinfo' },
    scopes: ['openid', 'profile', 'email', 'offline_access', 'wlcg', 'wlcg.groups'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email'],
      'wlcg.groups': ['wlcg.groups'],
    },
    features: {
      // the library's plain login + consent pages: login = a user's subject, any password
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // resource indicators must be absolute URIs at the authorization endpoint: the code
        // flow asks for urn:vre:api, whose tokens carry the audience --audience (as IAM's)
        defaultResource: async () => API_RESOURCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resourceIndicator) => resourceServerInfo(
          resourceIndicator === API_RESOURCE ? DEFAULT_AUDIENCE : resourceIndicator,
        ),
      },
    },
    async findAccount(_ctx, sub) {
      const user = USERS_BY_SUB.get(sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            name: user.name,
            preferred_username: user.username,
            email: user.email,
            'wlcg.groups': user.groups,
          };
        },
      };
    },
    async extraTokenClaims(_ctx, token) {
      const claims = { 'wlcg.ver': '1.0' };
      const user = token.accountId ? USERS_BY_SUB.get(token.accountId) : undefined;
      if (user) {
        claims.preferred_username = user.username;
        if (token.scopes.has('wlcg.groups')) claims['wlcg.groups'] = [...user.groups];
      }
      return claims;
    },
    formats: {
      customizers: {
        async jwt(ctx, token, jwt) {
          const knobs = ctx?.vreTokenKnobs;
          const { payload } = jwt;
          // IAM puts no typ in the JWS header; keep it only when asked for (--typ at+jwt)
          jwt.header = { typ: args.typ };
          payload.scope = token.scope || '';
          payload.nbf = payload.iat;
          if (!knobs) return;
          if (knobs.audiences.length > 1) payload.aud = [...knobs.audiences];
          payload.exp = payload.iat + knobs.expiresIn;
          payload.nbf = payload.iat + knobs.notBefore;
          if (knobs.extraClaims) {
            for (const [name, value] of Object.entries(knobs.extraClaims)) {
              if (value === null) delete payload[name];
              else payload[name] = value;
            }
          }
        },
      },
    },
  });

  provider.registerGrantType('client_credentials', clientCredentialsGrant, KNOBS);
  provider.registerGrantType(GT_PASSWORD, passwordGrant, ['username', 'password', ...KNOBS]);
  provider.registerGrantType(
    GT_TOKEN_EXCHANGE,
    tokenExchangeGrant,
    ['subject_token', 'subject_token_type', 'requested_token_type', ...KNOBS],
  );

  provider.on('server_error', (_ctx, err) => console.error('server_error', err));
  provider.on('grant.error', (_ctx, err) => console.error(`grant.error ${err.name}: ${err.error_description ?? err.message} ${err.error_detail ?? ''}`));

  return { provider, handler: provider.callback() };
}

let current = createProvider(currentKeys);

// ---- test admin endpoints + dispatch ----

function publicState() {
  return {
    issuer: ISSUER,
    default_audience: DEFAULT_AUDIENCE,
    signing_kid: currentKeys[0].kid,
    published_kids: currentKeys.map((k) => k.kid),
    users: Object.fromEntries(Object.entries(USERS).map(([username, u]) => [username, { ...u }])),
    clients: CLIENTS.map(({ client_id: id, client_secret: secret, grant_types: grants }) => ({
      client_id: id, client_secret: secret, grant_types: grants,
    })),
  };
}

function writeStateFile() {
  if (!STATE_DIR) return;
  fs.mkdirSync(STATE_DIR, { recursive: true });
  const file = path.join(STATE_DIR, 'provider.json');
  fs.writeFileSync(`${file}.tmp`, JSON.stringify({ pid: process.pid, port: PORT, ...publicState() }, null, 2));
  fs.renameSync(`${file}.tmp`, file);
}

function sendJson(res, status, body) {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': data.length, 'cache-control': 'no-store' });
  res.end(data);
}

function handleAdmin(req, res, url) {
  if (url.pathname === '/__test__/state' && req.method === 'GET') {
    return sendJson(res, 200, publicState());
  }
  if (url.pathname === '/__test__/rotate' && req.method === 'POST') {
    const keepOld = ['1', 'true', 'yes'].includes(url.searchParams.get('keep_old') ?? '');
    const previous = currentKeys.map((k) => k.kid);
    const fresh = newSigningKey();
    currentKeys = keepOld ? [fresh, ...currentKeys] : [fresh];
    current = createProvider(currentKeys);
    writeStateFile();
    console.error(`rotated: signing kid ${fresh.kid}; published ${currentKeys.map((k) => k.kid).join(', ')}`);
    return sendJson(res, 200, { ...publicState(), previous_kids: previous });
  }
  return sendJson(res, 404, { error: 'not_found' });
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, ISSUER);
  if (url.pathname.startsWith('/__test__/')) {
    // drain any body, then answer
    req.resume();
    req.on('end', () => {
      try {
        handleAdmin(req, res, url);
      } catch (err) {
        console.error('admin error', err);
        sendJson(res, 500, { error: 'server_error', error_description: String(err) });
      }
    });
    return;
  }
  current.handler(req, res);
});

server.on('error', (err) => {
  console.error(`listen error: ${err.code ?? ''} ${err.message}`);
  process.exit(err.code === 'EADDRINUSE' ? 98 : 1);
});

server.listen(PORT, HOST, () => {
  writeStateFile();
  console.error(`oidc test provider listening; issuer ${ISSUER}; signing kid ${currentKeys[0].kid}`);
});

function shutdown(signal) {
  console.error(`${signal}: shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

if (args['watch-stdin']) {
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}
