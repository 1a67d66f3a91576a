// A real OpenID provider for Berth's `http.auth.bearer.oidc` tests:
// panva's oidc-provider on 127.0.0.1:PORT, issuer http://127.0.0.1:PORT.
// One client, `ci` (secret `ci-secret`), gets JWT access tokens by the
// client credentials grant with a resource indicator (RFC 8707): the
// token's `aud` is the resource asked for, `sub` and `client_id` the
// client. Its keys are the provider's own (generated at each start).
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: 'ci',
    client_secret: 'ci-secret',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
  }],
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
