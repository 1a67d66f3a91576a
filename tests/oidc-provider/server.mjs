// A real OpenID provider for Berth's `http.auth.bearer.oidc` tests:
// panva's oidc-provider on 127.0.0.1:PORT, issuer http://127.0.0.1:PORT.
// One client, `ci` (secret `ci-secret`), gets JWT access tokens by the
// client credentials grant with a resource indicator (RFC 8707): the
// token's `aud` is the resource asked for, `sub` and `client_id` the
// client. Its keys are the provider's own (generated at each start).
//
// With a second argument, a JSON file of public keys (a JWKS), a second
// client, `sync`, authenticates with a JWT signed by one of those keys
// (`private_key_jwt`, RFC 7523) instead of a secret: the sync credential
// helper's assertion.
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const clients = [{
  client_id: 'ci',
  client_secret: 'ci-secret',
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
}];
if (process.argv[3]) {
  clients.push({
    client_id: 'sync',
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: JSON.parse(readFileSync(process.argv[3], 'utf8')),
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
  });
}
const provider = new Provider(issuer, {
  clients,
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'https://berth.test',
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => ({
        scope: 'push',
        audience: resource,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});
provider.listen(port, '127.0.0.1', () => console.log(`listening on ${issuer}`));
