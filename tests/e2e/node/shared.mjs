// What the openid-client scripts share (par_dpop_client.mjs, jar_client.mjs): the line protocol
// with their pytest drivers, the record of every HTTP exchange, and discovery as a private_key_jwt
// client.
import * as client from 'openid-client'
import { createInterface } from 'node:readline'

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()

// One JSON object per stdout line: what the pytest driver reads.
export const say = (object) => process.stdout.write(JSON.stringify(object) + '\n')

// The next stdin line, or null once the driver closed stdin.
export async function nextLine() {
  const { value, done } = await lines.next()
  return done ? null : value
}

// A line the protocol needs at this point: a closed stdin is an error.
export async function requiredLine() {
  const line = await nextLine()
  if (line === null) throw new Error('stdin closed before the expected line')
  return line
}

export const b64json = (part) => JSON.parse(Buffer.from(part, 'base64url').toString())

// Every HTTP exchange the library makes, so the test checks what happened on the wire (the
// use_dpop_nonce round trips, which key signed each proof, what a push sent) without trusting the
// script's own account of it. ``beforeSend(body)`` may change a request body first (an attacker
// on the way).
export function recorder(beforeSend = () => {}) {
  const exchanges = []
  async function recordingFetch(url, options) {
    const body = options.body
    beforeSend(body)
    const response = await fetch(url, options)
    const entry = { method: options.method, url: String(url), status: response.status }
    const headers = new Headers(options.headers)
    entry.dpop = headers.has('dpop')
    if (entry.dpop) {
      const proof = headers.get('dpop').split('.')
      entry.proof_jwk = b64json(proof[0]).jwk
      entry.proof_nonce = b64json(proof[1]).nonce ?? null
    }
    entry.dpop_nonce = response.headers.get('dpop-nonce')
    entry.authorization = (headers.get('authorization') || '').split(' ')[0]
    if (body instanceof URLSearchParams) {
      entry.params = [...new Set(body.keys())].sort()
      entry.client_assertion = body.has('client_assertion')
      entry.grant_type = body.get('grant_type')
    }
    if (response.status >= 400) {
      entry.error = response.headers.get('www-authenticate') || (await response.clone().text()).slice(0, 300)
    }
    exchanges.push(entry)
    return response
  }
  return { exchanges, recordingFetch }
}

// A P-256 private JWK (with its kid) as the {key, kid} openid-client signs with.
export async function signingKey(jwk) {
  const key = await crypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])
  return { key, kid: jwk.kid }
}

// The demo's metadata by discovery, as a private_key_jwt client signing its assertions with
// config.private_jwk; every request goes through recordingFetch.
export async function privateKeyJwtClient(config, recordingFetch) {
  return client.discovery(
    new URL(config.issuer),
    config.client_id,
    { token_endpoint_auth_method: 'private_key_jwt' },
    client.PrivateKeyJwt(await signingKey(config.private_jwk)),
    // The demo is served over http on the loopback; a real deployment is https and needs neither.
    { execute: [client.allowInsecureRequests], [client.customFetch]: recordingFetch },
  )
}
