// panva's openid-client (OpenID-certified, FAPI 2.0 profiles included) as a confidential client of
// the running demo: discovery, PAR with private_key_jwt and PKCE S256, DPoP at every step.
// Driven by tests/e2e/test_openid_client.py (docs/interop.md):
//
//   node par_dpop_client.mjs < config.json-line, then the callback URL as a second line
//
// stdin line 1: {"issuer", "client_id", "private_jwk", "redirect_uri", "scope", "resource_url"}
// stdout: one JSON object per line: {"step": "authorize", "url", "dpop_jwk"} once the authorization
// URL is ready (the test then opens it in Chromium and writes the callback URL on stdin), and
// {"step": "done", ...results} at the end; {"step": "error", ...} when the library throws.
import * as client from 'openid-client'
import { privateKeyJwtClient, recorder, requiredLine, say } from './shared.mjs'

const { exchanges, recordingFetch } = recorder()

async function main() {
  const config = JSON.parse(await requiredLine())
  const server = await privateKeyJwtClient(config, recordingFetch)
  const metadata = server.serverMetadata()

  const dpopKeys = await client.randomDPoPKeyPair('ES256')
  const dpop = client.getDPoPHandle(server, dpopKeys)
  const dpopJwk = await crypto.subtle.exportKey('jwk', dpopKeys.publicKey)

  const codeVerifier = client.randomPKCECodeVerifier()
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier)
  const state = client.randomState()
  const nonce = client.randomNonce()
  const authorizationUrl = await client.buildAuthorizationUrlWithPAR(
    server,
    {
      redirect_uri: config.redirect_uri,
      scope: config.scope,
      code_challenge: codeChallenge,
      code_challenge_method: 'S256',
      state,
      nonce,
    },
    { DPoP: dpop },
  )
  say({ step: 'authorize', url: authorizationUrl.href, dpop_jwk: { kty: dpopJwk.kty, crv: dpopJwk.crv, x: dpopJwk.x, y: dpopJwk.y } })

  const callback = new URL(await requiredLine())
  const tokens = await client.authorizationCodeGrant(
    server,
    callback,
    { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true },
    undefined,
    { DPoP: dpop },
  )
  const claims = tokens.claims()
  const userinfo = await client.fetchUserInfo(server, tokens.access_token, claims.sub, { DPoP: dpop })

  const refreshed = await client.refreshTokenGrant(server, tokens.refresh_token, undefined, { DPoP: dpop })
  const files = await client.fetchProtectedResource(
    server,
    refreshed.access_token,
    new URL(config.resource_url),
    'GET',
    undefined,
    undefined,
    { DPoP: dpop },
  )
  say({
    step: 'done',
    issuer: metadata.issuer,
    token_type: tokens.token_type,
    access_token: tokens.access_token,
    id_token_claims: claims,
    userinfo,
    refreshed_token_type: refreshed.token_type,
    refreshed_access_token: refreshed.access_token,
    refresh_token_rotated: Boolean(refreshed.refresh_token) && refreshed.refresh_token !== tokens.refresh_token,
    files_status: files.status,
    files: files.status === 200 ? await files.json() : await files.text(),
    exchanges,
  })
}

main().then(
  () => process.exit(0),
  (error) => {
    say({ step: 'error', name: error.name, code: error.code, message: error.message, error: error.error, exchanges })
    process.exit(1)
  },
)
