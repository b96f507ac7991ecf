// A real OpenID Connect provider for the SSO tests: panva's oidc-provider on 127.0.0.1.
//
// Usage: node server.mjs CLIENT_ID CLIENT_SECRET REDIRECT_URI [REDIRECT_URI ...]
// Prints "listening <issuer>" once it serves. Tests set a subject's claims with
// PUT /test/users/<sub> (a JSON object); the provider's own development forms sign
// people in (any login, any password) and ask for consent.
import http from 'node:http';

import Provider from 'oidc-provider';

const [clientId, clientSecret, ...redirectUris] = process.argv.slice(2);
if (!clientId || !clientSecret || redirectUris.length === 0) {
  console.error('usage: node server.mjs CLIENT_ID CLIENT_SECRET REDIRECT_URI [REDIRECT_URI ...]');
  process.exit(2);
}

const users = new Map();

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }],
    // Every client must use PKCE, confidential ones included.
    pkce: { required: () => true },
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    cookies: { keys: ['partner-console-tests-only'] },
    async findAccount(ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return { sub, ...(users.get(sub) || {}) };
        },
      };
    },
  });
  provider.on('server_error', (ctx, error) => console.error('server_error', error));
  const handle = provider.callback();
  server.on('request', async (req, res) => {
    const match = req.url.match(/^\/test\/users\/([^/?]+)$/);
    if (match && req.method === 'PUT') {
      try {
        users.set(decodeURIComponent(match[1]), JSON.parse(await readBody(req)));
        res.writeHead(204).end();
      } catch (error) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(String(error));
      }
      return;
    }
    handle(req, res);
  });
  console.log(`listening ${issuer}`);
});
