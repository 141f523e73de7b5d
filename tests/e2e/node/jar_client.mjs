// panva's openid-client as a private_key_jwt client of the running demo that signs its authorization
// requests (RFC 9101, JAR) and binds its authorization code to a DPoP key (RFC 9449 10).
// Driven by tests/e2e/test_openid_client_jar.py (docs/interop.md):
//
//   node jar_client.mjs < config line, then one line per code exchange to try
//
// stdin line 1: {"issuer", "client_id", "private_jwk", "redirect_uri", "scope", "mode", "bind", "tamper"}
//   mode "jar": buildAuthorizationUrlWithJAR, the request object through the browser; with bind, the
//     object carries dpop_jkt (the thumbprint of the script's DPoP key);
//   mode "jar_par": the same request object pushed with buildAuthorizationUrlWithPAR (the library's
//     documented way to combine them); with bind, the push carries a DPoP proof (RFC 9449 10.1);
//   tamper: the pushed request object's payload is changed on the wire (its signature kept).
// stdout, one JSON object per line:
//   {"step": "authorize", "url", "request_object", "dpop_jwk", "other_jwk"} once the URL is ready,
//     or {"step": "authorize_refused", ...error} when the server refused the push;
//   then, for each stdin line {"callback": URL, "dpop": "bound" | "other" | "none"}, the code
//     exchange with that callback URL, PKCE verifier and DPoP key (the bound one, another one, none):
//     {"step": "exchange", "ok": true, "token_type", "access_token", "id_token_claims", "exchanges"}
//     or {"step": "exchange", "ok": false, "error", "error_description", "status", "exchanges"};
//   {"step": "error", ...} when the library throws elsewhere.
import * as client from 'openid-client'
import { b64json, nextLine, privateKeyJwtClient, recorder, say, signingKey } from './shared.mjs'

// The request object with one claim changed and its signature kept: what an attacker on the way
// would send.
function tampered(requestObject) {
  const [header, payload, signature] = requestObject.split('.')
  const claims = { ...b64json(payload), redirect_uri: 'https://attacker.example/callback' }
  return [header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.')
}

let tamper = false
const { exchanges, recordingFetch } = recorder((body) => {
  if (tamper && body instanceof URLSearchParams && body.has('request')) {
    body.set('request', tampered(body.get('request')))
  }
})

const publicJwk = async (keys) => {
  const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', keys.publicKey)
  return { kty, crv, x, y }
}

const failure = (error) => ({
  ok: false,
  name: error.name,
  code: error.code,
  error: error.error,
  error_description: error.error_description,
  status: error.status,
  message: error.message,
})

async function main() {
  const config = JSON.parse(await nextLine())
  tamper = Boolean(config.tamper)
  const server = await privateKeyJwtClient(config, recordingFetch)

  // The key the code is bound to, and another one the same client holds (or a thief made).
  const boundKeys = await client.randomDPoPKeyPair('ES256')
  const otherKeys = await client.randomDPoPKeyPair('ES256')
  const handles = {
    bound: client.getDPoPHandle(server, boundKeys),
    other: client.getDPoPHandle(server, otherKeys),
    none: undefined,
  }

  const codeVerifier = client.randomPKCECodeVerifier()
  const parameters = {
    redirect_uri: config.redirect_uri,
    scope: config.scope,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state: client.randomState(),
    nonce: client.randomNonce(),
  }
  if (config.bind && config.mode === 'jar') {
    parameters.dpop_jkt = await handles.bound.calculateThumbprint() // RFC 9449 10
  }
  const requestSigningKey = await signingKey(config.private_jwk)
  const jar = await client.buildAuthorizationUrlWithJAR(server, parameters, requestSigningKey)
  const requestObject = jar.searchParams.get('request')
  let url = jar
  if (config.mode === 'jar_par') {
    try {
      url = await client.buildAuthorizationUrlWithPAR(
        server,
        jar.searchParams,
        config.bind ? { DPoP: handles.bound } : undefined,
      )
    } catch (error) {
      say({ step: 'authorize_refused', ...failure(error), request_object: requestObject, exchanges })
      return
    }
  }
  say({
    step: 'authorize',
    url: url.href,
    request_object: requestObject,
    dpop_jwk: await publicJwk(boundKeys),
    other_jwk: await publicJwk(otherKeys),
  })

  for (let line = await nextLine(); line !== null; line = await nextLine()) {
    const attempt = JSON.parse(line)
    const handle = handles[attempt.dpop]
    let answer
    try {
      const tokens = await client.authorizationCodeGrant(
        server,
        new URL(attempt.callback),
        {
          pkceCodeVerifier: codeVerifier,
          expectedState: parameters.state,
          expectedNonce: parameters.nonce,
          idTokenExpected: true,
        },
        undefined,
        handle ? { DPoP: handle } : undefined,
      )
      answer = {
        ok: true,
        token_type: tokens.token_type,
        access_token: tokens.access_token,
        id_token_claims: tokens.claims(),
      }
    } catch (error) {
      answer = failure(error)
    }
    say({ step: 'exchange', dpop: attempt.dpop, ...answer, exchanges })
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    say({ step: 'error', name: error.name, code: error.code, message: error.message, error: error.error, exchanges })
    process.exit(1)
  },
)
