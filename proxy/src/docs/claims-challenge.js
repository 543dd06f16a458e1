// Swagger UI answers Microsoft's claims challenges (authz-proxy, docs.rs).
//
// The page declares the cp1 client capability in the `claims` parameter of
// its authorization request (as MSAL's clientCapabilities does), so the
// gateway may answer a token without a route's authentication context with
// 401 and `WWW-Authenticate: Bearer ..., error="insufficient_claims",
// claims="<base64 JSON>"`. This response interceptor reads that challenge
// from any response Swagger UI receives and merges the decoded claims into
// the `claims` parameter of the next sign-in: the user presses Authorize
// again (Logout, Authorize), satisfies the authentication context, and the
// new token's `acrs` passes. The merged request lasts until the page is
// reloaded. The challenge's `authorization_uri` is not followed: Swagger UI
// signs in where /openapi.json says, the same tenant the gateway trusts.
//
// Swagger UI's HTTP client splits a header at ", " into an array; the
// challenge is read from the rejoined text. A challenge that is not
// base64 JSON is ignored (logged to the console), never half applied.
function authzProxyClaimsChallenges(initial) {
  let oauth = initial;

  function decodeBase64(text) {
    let b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4 !== 0) {
      b64 += "=";
    }
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  // Each token's claim requests of the challenge replace the same claim's
  // request and keep the others (the cp1 declaration stays).
  function merge(current, requested) {
    const merged = current ? JSON.parse(current) : {};
    for (const [token, claims] of Object.entries(requested)) {
      merged[token] =
        isObject(merged[token]) && isObject(claims)
          ? Object.assign({}, merged[token], claims)
          : claims;
    }
    return JSON.stringify(merged);
  }

  return function responseInterceptor(response) {
    const raw = response && response.headers && response.headers["www-authenticate"];
    if (!raw || response.status !== 401) {
      return response;
    }
    const header = Array.isArray(raw) ? raw.join(", ") : String(raw);
    const claims = /(?:^|[\s,])claims="([^"]*)"/.exec(header);
    if (!/(?:^|[\s,])error="insufficient_claims"/.test(header) || !claims) {
      return response;
    }
    try {
      const requested = JSON.parse(decodeBase64(claims[1]));
      if (!isObject(requested)) {
        throw new Error("the claims are not a JSON object");
      }
      const params = oauth.additionalQueryStringParams || {};
      const next = merge(params.claims, requested);
      oauth = Object.assign({}, oauth, {
        additionalQueryStringParams: Object.assign({}, params, { claims: next }),
      });
      window.ui.initOAuth(oauth);
      console.info("claims challenge: press Authorize to sign in again with claims " + next);
    } catch (e) {
      console.warn("claims challenge ignored: " + e.message);
    }
    return response;
  };
}
