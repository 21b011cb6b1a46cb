// rfc6749-server.mjs --
//
//	A generic RFC 6749 authorization server for the ttoauth2 tests:
//	oauth2-mock-server's OAuth2Server (authorize endpoint, PKCE check,
//	token issuance), plus, through its events, what a real server does and
//	the mock does not, and what the tests need to observe and provoke.
//	It listens on loopback only and never talks to the network.
//
// RUNNING IT
//
//	node tests/rfc6749-server.mjs ?--port N? ?--host 127.0.0.1|::1?
//				      ?--lifetime SECONDS?
//	prints "rfc6749 listening on http://HOST:PORT" on stdout once it listens
//	(port 0, the default, picks a free one; IPv6 hosts are bracketed), then
//	reads commands on stdin. It exits when stdin reaches end of file (so it
//	dies with the process holding its pipe), on the command "quit", or after
//	--lifetime seconds (default 600).
//
// ENDPOINTS (oauth2-mock-server's)
//
//	GET  /authorize	  302 to redirect_uri?code=C&state=S. The code works once,
//			  only for the client_id and redirect_uri it was issued
//			  for; a code issued with a code_challenge needs the
//			  matching code_verifier (the mock checks the match; this
//			  program adds that it must be present). An unknown
//			  client_id gets error=unauthorized_client instead.
//	POST /token	  grant_type=authorization_code or refresh_token.
//			  Client authentication (RFC 6749 2.3.1) is enforced:
//			  either client_id + client_secret in the form body, or
//			  HTTP Basic of form-urlencoded(id):form-urlencoded(secret);
//			  never both; a client registered without a secret (a
//			  public client) sends client_id alone. Failure: 401
//			  {"error":"invalid_client"} (with WWW-Authenticate when
//			  Basic was tried). Refresh tokens are tracked: an unknown
//			  or spent one gets 400 invalid_grant. By default every
//			  refresh rotates the refresh token (the old one is spent).
//
// COMMANDS (stdin, one per line; one reply line on stdout per command)
//
//	A command is a JSON object {"id": ID, "cmd": NAME, key: value, ...}, or,
//	typed by hand, words: NAME ?key value ...?. Values may be strings; numbers
//	and booleans are converted. The reply is one line of JSON:
//	{"id": ID, "ok": true, ...} or {"id": ID, "ok": false, "error": "..."}.
//
//	ping				-> {"pong": true}
//	reset				forget codes, refresh tokens, the log, queued
//					answers; defaults and clients back to the start
//	client client_id ID ?client_secret S?
//					register (or re-register) a client; without a
//					secret it is a public client. Initially one:
//					"rfc-client", secret "rfc-secret-0001"
//	defaults ?rotate 0|1? ?expires_in N|omit? ?refresh_expires_in N|omit?
//					how successful answers look (rotate 1,
//					expires_in 3600, no refresh expiry)
//	answer grant G kind K ?key value ...?
//					queue a one-shot answer for the next token
//					request whose grant_type is G
//					(authorization_code, refresh_token or any),
//					after client authentication passed. Kinds:
//	    ok		success; optional expires_in (N or omit), refresh (rotate:
//			a new refresh token, omit: none, the old one stays valid),
//			refresh_expires_in, token_type, scope
//	    error	status (400), error (invalid_grant), description; in the
//			description {code} {refresh_token} {code_verifier} and
//			{client_secret} become what the request carried (a
//			careless server echoing secrets)
//	    html500	HTTP 500 with an HTML page
//	    nonjson	HTTP 200, text/plain, a form-encoded "token" (not JSON)
//	    redirect	HTTP status (302) to location (default /token-moved) with
//			a body that would be a valid token response
//	    body	HTTP status (200), content_type (application/json), text:
//			any body at all
//	    Any kind also takes delay MS: the answer is sent that much later.
//	    count N queues it N times.
//	authorize kind deny ?error E? ?description D?
//					the next authorize redirect carries
//					error=E (access_denied) instead of a code
//	seed refresh_token T ?client_id ID?
//					make T a valid refresh token (for ID,
//					default the initial client)
//	log				-> {"token": [...], "authorize": [...]}, what
//					the server saw (below)
//	quit				exit
//
// THE LOG (no secret, code, token or verifier is ever stored in it)
//
//	token entries:	 n method path content_type accept user_agent query
//			 grant_type auth (body|basic|none|both|malformed)
//			 client_id basic_id_raw (the id as it was encoded in Basic)
//			 client_authenticated code_verifier (bool) pkce (verified,
//			 missing, none) resource scope redirect_uri params (sorted
//			 body keys) extra (body members that are not RFC 6749's,
//			 with their values) status outcome (ok, or the error /
//			 kind answered) refresh_rotated (bool)
//	authorize entries: n response_type client_id redirect_uri scope state
//			 code_challenge (bool) code_challenge_length
//			 code_challenge_method resource params (sorted keys) extra
//			 outcome (code, or the error)

import { OAuth2Server } from 'oauth2-mock-server';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';

const INITIAL_CLIENT = { id: 'rfc-client', secret: 'rfc-secret-0001' };

// RFC 6749 / 7636 / 8707 parameters of a token request: anything else in
// the body is an "extra" (what addTokenQueryParam / addRefreshQueryParam add).
const STANDARD_PARAMS = new Set([
    'grant_type', 'code', 'redirect_uri', 'code_verifier', 'client_id',
    'client_secret', 'refresh_token', 'scope', 'resource',
]);
const STANDARD_AUTHORIZE_PARAMS = new Set([
    'response_type', 'client_id', 'redirect_uri', 'scope', 'state',
    'code_challenge', 'code_challenge_method', 'resource',
]);

function parseArgs(argv) {
    const opts = { port: 0, host: '127.0.0.1', lifetime: 600 };
    for (let i = 0; i < argv.length; i += 2) {
        const name = argv[i], value = argv[i + 1];
        if (value === undefined) {
            throw new Error(`option ${name} needs a value`);
        }
        switch (name) {
        case '--port': opts.port = Number(value); break;
        case '--host': opts.host = value; break;
        case '--lifetime': opts.lifetime = Number(value); break;
        default: throw new Error(`unknown option ${name}: must be --port, --host or --lifetime`);
        }
    }
    if (!['127.0.0.1', '::1', 'localhost'].includes(opts.host)) {
        throw new Error('--host must be a loopback address');
    }
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
        throw new Error('--port must be 0..65535');
    }
    if (!(opts.lifetime > 0)) {
        throw new Error('--lifetime must be a positive number of seconds');
    }
    return opts;
}

// Everything the tests can change; reset() puts it back.
const state = {};

function reset() {
    state.clients = new Map([[INITIAL_CLIENT.id, INITIAL_CLIENT.secret]]);
    state.codes = new Map();	// code -> {clientId, redirectUri, challenge, used}
    state.refreshTokens = new Map();	// token -> clientId
    state.defaults = { rotate: true, expires_in: 3600, refresh_expires_in: 'omit' };
    state.answers = [];		// one-shot token answers, in order
    state.authorizeAnswers = [];	// one-shot authorize answers
    state.tokenLog = [];
    state.authorizeLog = [];
}
reset();

// application/x-www-form-urlencoded decoding of one component (RFC 6749
// appendix B): '+' is a space, %XX are UTF-8 octets. Throws on malformed input.
function formDecode(s) {
    return decodeURIComponent(s.replace(/\+/g, ' '));
}

// Which client-authentication method a token request used (RFC 6749 2.3).
function clientCredentials(req, body) {
    const header = req.headers.authorization;
    const secretInBody = Object.hasOwn(body, 'client_secret');

    if (header !== undefined) {
        if (secretInBody) {
            return { method: 'both' };
        }
        const m = /^Basic +([A-Za-z0-9+/=]+)$/i.exec(header);
        if (!m) {
            return { method: 'malformed' };
        }
        const decoded = Buffer.from(m[1], 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon < 0) {
            return { method: 'malformed' };
        }
        const rawId = decoded.slice(0, colon);
        try {
            return {
                method: 'basic', rawId,
                id: formDecode(rawId), secret: formDecode(decoded.slice(colon + 1)),
            };
        } catch {
            return { method: 'malformed', rawId };
        }
    }
    if (secretInBody) {
        return { method: 'body', id: body.client_id, secret: body.client_secret };
    }
    return { method: 'none', id: body.client_id };
}

function authenticated(creds) {
    if (typeof creds.id !== 'string' || !state.clients.has(creds.id)) {
        return false;
    }
    const secret = state.clients.get(creds.id);
    if (secret === '') {
        return creds.method === 'none';		// a public client
    }
    return (creds.method === 'body' || creds.method === 'basic')
        && creds.secret === secret;
}

function takeAnswer(list, grant) {
    const i = list.findIndex((a) => a.grant === 'any' || a.grant === grant);
    if (i < 0) {
        return null;
    }
    const answer = list[i];
    if (answer.count > 1) {
        answer.count -= 1;
    } else {
        list.splice(i, 1);
    }
    return answer;
}

// The answer goes out through res.json, which the mock's token handler
// calls right after this event: replacing it on this response object lets
// an answer be something else than JSON, or come later.
function sendInstead(res, delay, send) {
    res.json = function () {
        const go = () => {
            delete res.json;		// back to express's own
            send(res);
        };
        if (delay > 0) {
            setTimeout(go, delay);
        } else {
            go();
        }
        return res;
    };
}

// A JSON answer (the mock's, or an error) that comes delay ms late.
function delayJson(res, delay, response) {
    if (delay > 0) {
        sendInstead(res, delay, (r) => r.status(response.statusCode).json(response.body));
    }
}

function numberOrOmit(value, fallback) {
    if (value === undefined) {
        return fallback;
    }
    return value === 'omit' ? 'omit' : Number(value);
}

function tokenError(response, status, error, description) {
    response.statusCode = status;
    response.body = { error };
    if (description !== undefined) {
        response.body.error_description = description;
    }
    return error;
}

// Careless servers echo what they were sent in error_description: the
// placeholders {code} {refresh_token} {code_verifier} {client_secret} are
// replaced by what this request carried, to check the client scrubs them.
function echoSecrets(text, body, creds) {
    if (typeof text !== 'string') {
        return text;
    }
    const values = {
        code: body.code, refresh_token: body.refresh_token,
        code_verifier: body.code_verifier, client_secret: creds.secret,
    };
    return text.replace(/\{(code|refresh_token|code_verifier|client_secret)\}/g,
        (all, name) => (typeof values[name] === 'string' ? values[name] : all));
}

// The token endpoint's extra behaviour; returns the log's outcome word.
function shapeTokenResponse(response, req, body, entry) {
    const grant = body.grant_type;
    const res = req.res;
    const creds = clientCredentials(req, body);

    entry.auth = creds.method;
    entry.client_id = typeof creds.id === 'string' ? creds.id : null;
    if (creds.rawId !== undefined) {
        entry.basic_id_raw = creds.rawId;
    }
    entry.client_authenticated = authenticated(creds);
    if (!entry.client_authenticated) {
        if (creds.method === 'basic' || creds.method === 'malformed'
            || creds.method === 'both') {
            res.set('WWW-Authenticate', 'Basic realm="rfc6749"');
        }
        return tokenError(response, 401, 'invalid_client',
            creds.method === 'both'
                ? 'more than one client authentication method'
                : 'client authentication failed');
    }

    if (grant === 'authorization_code') {
        const issued = state.codes.get(body.code);
        if (issued === undefined || issued.used) {
            return tokenError(response, 400, 'invalid_grant',
                'unknown or already used authorization code');
        }
        issued.used = true;
        if (issued.clientId !== creds.id) {
            return tokenError(response, 400, 'invalid_grant',
                'code was issued to another client');
        }
        if (issued.redirectUri !== body.redirect_uri) {
            return tokenError(response, 400, 'invalid_grant',
                'redirect_uri does not match the authorization request');
        }
        if (issued.challenge) {
            if (!Object.hasOwn(body, 'code_verifier')) {
                entry.pkce = 'missing';
                return tokenError(response, 400, 'invalid_grant',
                    'code_verifier required');
            }
            // The mock compared it with the code_challenge already, or we
            // would not be here.
            entry.pkce = 'verified';
        }
    } else if (grant === 'refresh_token') {
        const owner = state.refreshTokens.get(body.refresh_token);
        if (owner === undefined) {
            return tokenError(response, 400, 'invalid_grant',
                'unknown, expired or already used refresh token');
        }
        if (owner !== creds.id) {
            return tokenError(response, 400, 'invalid_grant',
                'refresh token was issued to another client');
        }
    }

    const answer = takeAnswer(state.answers, grant) ?? { kind: 'ok' };
    const delay = Number(answer.delay ?? 0);
    const okBody = response.body;	// what the mock built: a valid answer

    switch (answer.kind) {
    case 'error':
        tokenError(response, Number(answer.status ?? 400),
            answer.error ?? 'invalid_grant',
            echoSecrets(answer.description, body, creds));
        delayJson(res, delay, response);
        return response.body.error;
    case 'html500':
        sendInstead(res, delay, (r) => {
            r.status(500).type('text/html').send('<!DOCTYPE html><html><head>'
                + '<title>500 Internal Server Error</title></head><body>'
                + '<h1>Internal Server Error</h1></body></html>');
        });
        return 'html500';
    case 'nonjson':
        sendInstead(res, delay, (r) => {
            r.status(200).type('text/plain').send(
                'access_token=not-json-token&token_type=bearer&expires_in=3600');
        });
        return 'nonjson';
    case 'redirect': {
        const location = answer.location ?? '/token-moved';
        sendInstead(res, delay, (r) => {
            r.status(Number(answer.status ?? 302)).set('Location', location)
                .type('application/json')
                .send(JSON.stringify({
                    access_token: 'redirected-access-token', token_type: 'Bearer',
                    expires_in: 3600, refresh_token: 'redirected-refresh-token',
                }));
        });
        return 'redirect';
    }
    case 'body':
        sendInstead(res, delay, (r) => {
            r.status(Number(answer.status ?? 200))
                .type(answer.content_type ?? 'application/json')
                .send(String(answer.text ?? ''));
        });
        return 'body';
    case 'ok':
        break;
    default:
        return tokenError(response, 500, 'server_error',
            `rfc6749-server: unknown answer kind ${answer.kind}`);
    }

    // Success: shape it, and keep track of refresh tokens.
    const expiresIn = numberOrOmit(answer.expires_in, state.defaults.expires_in);
    if (expiresIn === 'omit') {
        delete okBody.expires_in;
    } else {
        okBody.expires_in = expiresIn;
    }
    const refreshExpiresIn = numberOrOmit(answer.refresh_expires_in,
        state.defaults.refresh_expires_in);
    if (refreshExpiresIn !== 'omit') {
        okBody.refresh_token_expires_in = refreshExpiresIn;
    }
    if (answer.token_type !== undefined) {
        okBody.token_type = answer.token_type;
    }
    if (answer.scope !== undefined) {
        okBody.scope = answer.scope;
    }
    let refresh = answer.refresh;
    if (refresh === undefined) {
        refresh = (grant === 'refresh_token' && !state.defaults.rotate)
            ? 'omit' : 'rotate';
    }
    if (refresh === 'omit') {
        delete okBody.refresh_token;
    } else {
        okBody.refresh_token ??= randomUUID();
        state.refreshTokens.set(okBody.refresh_token, creds.id);
        if (grant === 'refresh_token') {
            state.refreshTokens.delete(body.refresh_token);	// spent
            entry.refresh_rotated = true;
        }
    }
    delayJson(res, delay, response);
    return 'ok';
}

function onBeforeResponse(response, req) {
    const body = req.body ?? {};
    const query = { ...req.query };
    const extra = {};

    for (const [k, v] of Object.entries(body)) {
        if (!STANDARD_PARAMS.has(k)) {
            extra[k] = v;
        }
    }
    const entry = {
        n: state.tokenLog.length + 1,
        method: req.method,
        path: req.path,
        content_type: req.headers['content-type'] ?? null,
        accept: req.headers.accept ?? null,
        user_agent: req.headers['user-agent'] ?? null,
        query,
        grant_type: body.grant_type ?? null,
        code_verifier: Object.hasOwn(body, 'code_verifier'),
        pkce: 'none',
        resource: body.resource ?? null,
        scope: body.scope ?? null,
        redirect_uri: body.redirect_uri ?? null,
        params: Object.keys(body).sort(),
        extra,
        refresh_rotated: false,
    };
    state.tokenLog.push(entry);
    try {
        entry.outcome = shapeTokenResponse(response, req, body, entry);
    } catch (e) {
        entry.outcome = 'server_error';
        tokenError(response, 500, 'server_error', `rfc6749-server: ${e.message}`);
    }
    // What actually went out (a raw or delayed answer is sent later).
    entry.status = response.statusCode;
    req.res.once('finish', () => {
        entry.status = req.res.statusCode;
    });

}

function onBeforeAuthorizeRedirect(redirect, req) {
    const q = req.query;
    const url = redirect.url;
    const code = url.searchParams.get('code');
    const extra = {};

    for (const [k, v] of Object.entries(q)) {
        if (!STANDARD_AUTHORIZE_PARAMS.has(k)) {
            extra[k] = v;
        }
    }
    const entry = {
        n: state.authorizeLog.length + 1,
        response_type: q.response_type ?? null,
        client_id: q.client_id ?? null,
        redirect_uri: q.redirect_uri ?? null,
        scope: q.scope ?? null,
        state: q.state ?? null,
        code_challenge: typeof q.code_challenge === 'string',
        code_challenge_length: typeof q.code_challenge === 'string'
            ? q.code_challenge.length : 0,
        code_challenge_method: q.code_challenge_method ?? null,
        resource: q.resource ?? null,
        params: Object.keys(q).sort(),
        extra,
    };
    state.authorizeLog.push(entry);

    if (code === null) {
        entry.outcome = url.searchParams.get('error') ?? 'no code';
        return;
    }
    const deny = takeAnswer(state.authorizeAnswers, 'any');
    let error = null, description = null;
    if (deny) {
        error = deny.error ?? 'access_denied';
        description = deny.description ?? 'the resource owner denied the request';
    } else if (typeof q.client_id !== 'string' || !state.clients.has(q.client_id)) {
        error = 'unauthorized_client';
        description = 'unknown client_id';
    }
    if (error) {
        url.searchParams.delete('code');
        url.searchParams.set('error', error);
        url.searchParams.set('error_description', description);
        entry.outcome = error;
        return;
    }
    state.codes.set(code, {
        clientId: q.client_id,
        redirectUri: q.redirect_uri,
        challenge: typeof q.code_challenge === 'string' && q.code_challenge !== '',
        used: false,
    });
    entry.outcome = 'code';
}

// Commands ---------------------------------------------------------------

function parseCommand(line) {
    if (line.startsWith('{')) {
        return JSON.parse(line);
    }
    const words = line.split(/\s+/).filter((w) => w !== '');
    const command = { cmd: words[0] };
    for (let i = 1; i + 1 < words.length; i += 2) {
        command[words[i]] = words[i + 1];
    }
    return command;
}

function truthy(v) {
    return v === true || v === 1 || v === '1' || v === 'true' || v === 'yes';
}

const ANSWER_KINDS = ['ok', 'error', 'html500', 'nonjson', 'redirect', 'body'];
const GRANTS = ['authorization_code', 'refresh_token', 'any'];

function runCommand(c, shutdown) {
    switch (c.cmd) {
    case 'ping':
        return { pong: true };
    case 'reset':
        reset();
        return {};
    case 'client':
        if (typeof c.client_id !== 'string' || c.client_id === '') {
            throw new Error('client needs client_id');
        }
        state.clients.set(c.client_id,
            c.client_secret === undefined ? '' : String(c.client_secret));
        return {};
    case 'defaults':
        if (c.rotate !== undefined) {
            state.defaults.rotate = truthy(c.rotate);
        }
        if (c.expires_in !== undefined) {
            state.defaults.expires_in = numberOrOmit(c.expires_in);
        }
        if (c.refresh_expires_in !== undefined) {
            state.defaults.refresh_expires_in = numberOrOmit(c.refresh_expires_in);
        }
        return { defaults: state.defaults };
    case 'answer': {
        const answer = { ...c };
        delete answer.id;
        delete answer.cmd;
        answer.grant ??= 'any';
        answer.count = Number(answer.count ?? 1);
        if (!GRANTS.includes(answer.grant)) {
            throw new Error(`grant must be one of ${GRANTS.join(', ')}`);
        }
        if (!ANSWER_KINDS.includes(answer.kind)) {
            throw new Error(`kind must be one of ${ANSWER_KINDS.join(', ')}`);
        }
        state.answers.push(answer);
        return { queued: state.answers.length };
    }
    case 'authorize':
        if (c.kind !== 'deny') {
            throw new Error('authorize kind must be deny');
        }
        state.authorizeAnswers.push({
            grant: 'any', count: Number(c.count ?? 1),
            error: c.error, description: c.description,
        });
        return {};
    case 'seed':
        if (typeof c.refresh_token !== 'string' || c.refresh_token === '') {
            throw new Error('seed needs refresh_token');
        }
        state.refreshTokens.set(c.refresh_token, c.client_id ?? INITIAL_CLIENT.id);
        return {};
    case 'log':
        return { token: state.tokenLog, authorize: state.authorizeLog };
    case 'quit':
        setImmediate(shutdown);
        return {};
    default:
        throw new Error(`unknown command ${c.cmd}: must be ping, reset, client, `
            + 'defaults, answer, authorize, seed, log or quit');
    }
}

// Main -------------------------------------------------------------------

async function main() {
    let opts;
    try {
        opts = parseArgs(process.argv.slice(2));
    } catch (e) {
        process.stderr.write(`rfc6749-server: ${e.message}\n`);
        process.exit(2);
    }

    const server = new OAuth2Server();
    await server.issuer.keys.generate('RS256');
    server.service.on('beforeResponse', onBeforeResponse);
    server.service.on('beforeAuthorizeRedirect', onBeforeAuthorizeRedirect);
    // The mock's JWTs are a function of the second they are made in: a
    // unique jti makes every access token differ, as real ones do.
    server.service.on('beforeTokenSigning', (token) => {
        token.payload.jti = randomUUID();
    });
    await server.start(opts.port, opts.host);

    let stopping = false;
    const shutdown = () => {
        if (stopping) {
            return;
        }
        stopping = true;
        // Keep-alive connections could hold close() open: bound it.
        setTimeout(() => process.exit(0), 1000).unref();
        server.stop().then(() => process.exit(0), () => process.exit(0));
    };
    setTimeout(shutdown, opts.lifetime * 1000);

    const { port } = server.address();
    const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
    process.stdout.write(`rfc6749 listening on http://${host}:${port}\n`);

    const lines = createInterface({ input: process.stdin, terminal: false });
    lines.on('line', (line) => {
        if (line.trim() === '') {
            return;
        }
        let id = null, reply;
        try {
            const command = parseCommand(line.trim());
            id = command.id ?? null;
            reply = { id, ok: true, ...runCommand(command, shutdown) };
        } catch (e) {
            reply = { id, ok: false, error: e.message };
        }
        process.stdout.write(`${JSON.stringify(reply)}\n`);
    });
    lines.on('close', shutdown);
}

main().catch((e) => {
    process.stderr.write(`rfc6749-server: ${e.stack ?? e}\n`);
    process.exit(1);
});
