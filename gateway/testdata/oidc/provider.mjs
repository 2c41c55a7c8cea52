// A real OpenID provider for trying the gateway's OAuth mode end to end:
// panva's oidc-provider (pinned in package-lock.json), configured for one
// confidential client that gets JWT access tokens with client credentials.
//
//   PORT=9400 CLIENT_SECRET=s3cret node provider.mjs   (or: node provider.mjs 9400)
//
// Issuer http://127.0.0.1:PORT (port 0 picks a free one); discovery at /.well-known/openid-configuration,
// keys at /jwks, tokens at /token. A client_credentials request with
// resource=<gateway MCP URL> (RFC 8707) gets an RS256 JWT whose aud is that
// URL and whose scope is what was asked of mcp:tools and mcp:admin.
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.argv[2] || process.env.PORT || 9400);
const server = createServer();
server.on('error', (err) => {
  console.error(`oidc provider: ${err.message}`);
  process.exit(1);
});
// Listen first, so that with port 0 the issuer names the port we got.
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
const secret = process.env.CLIENT_SECRET || 's3cret';
const scopes = 'mcp:tools mcp:admin';

// A fresh RS256 signing key on every start; JWKS publishes its public half.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: `k${Date.now()}`, alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  jwks: { keys: [jwk] },
  clients: [{
    client_id: 'mcp-client',
    client_secret: secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: scopes, // the most this client may ask for
  }],
  scopes: ['openid', ...scopes.split(' ')],
  ttl: { ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL ?? 5 * 60 },
  features: {
    devInteractions: { enabled: false }, // no login pages: machine clients only
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // No resource parameter: no resource server, so an opaque token.
      defaultResource: () => undefined,
      // Any absolute http(s) URL is a resource server (the gateway's /mcp,
      // or another one, to see the gateway refuse a token not meant for it).
      getResourceServerInfo: (ctx, resource) => {
        if (!/^https?:\/\//.test(resource)) throw new Provider.errors.InvalidTarget();
        return {
          audience: resource,
          scope: scopes,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 5 * 60,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
});

// Log token endpoint errors so a refused request is explained on stderr.
provider.on('grant.error', (ctx, err) => console.error(`token error: ${err.message} ${err.error_description ?? ''}`));
provider.on('server_error', (ctx, err) => console.error('server error:', err));

server.on('request', provider.callback());
// Ready: tests and scripts wait for this line.
console.log(`oidc provider listening issuer=${issuer}`);
// Ctrl-C or kill: exit at once (all state is in memory and may go).
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
