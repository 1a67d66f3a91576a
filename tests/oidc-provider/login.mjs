// A real OpenID provider for Berth's browser login tests (issue 16):
// panva's oidc-provider on 127.0.0.1:PORT, issuer http://127.0.0.1:PORT,
// with its development login pages (a form taking a user name and any
// password, then a consent page).
//
//   node login.mjs PORT REDIRECT_URI[,REDIRECT_URI...]
//
// Clients: `berth` (secret `berth-secret`) and `other` (secret
// `other-secret`), both with the given redirect URIs, the authorization
// code grant, and PKCE. Users: alice (groups dev, readers), bob (ops);
// any other name is refused at the login form. Claims: email,
// preferred_username, groups (scope `groups`). Tokens: an access token for
// the userinfo endpoint; ID tokens signed RS256 with the provider's keys
// (made at each start). Its end-session endpoint is on (RP-initiated
// logout).
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const redirects = (process.argv[3] || '').split(',').filter(Boolean);
const issuer = `http://127.0.0.1:${port}`;

const users = {
  alice: { email: 'alice@example.test', groups: ['dev', 'readers'] },
  bob: { email: 'bob@example.test', groups: ['ops'] },
};

const client = (id) => ({
  client_id: id,
  client_secret: `${id}-secret`,
  grant_types: ['authorization_code'],
  response_types: ['code'],
  redirect_uris: redirects,
  // zot's web UI comes back to /login, Berth's to /.
  post_logout_redirect_uris: redirects.flatMap((r) => ['/login', '/'].map((p) => new URL(p, r).toString())),
});

const provider = new Provider(issuer, {
  clients: [client('berth'), client('other')],
  claims: {
    openid: ['sub'],
    email: ['email'],
    profile: ['preferred_username'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  async findAccount(ctx, id) {
    const user = users[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, ...user };
      },
    };
  },
});
provider.listen(port, '127.0.0.1', () => console.log(`listening on ${issuer}`));
