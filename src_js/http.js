/*
 * POSTs to dash-state's routes (dash_state/glue/routes.py), with the page's Dash
 * path prefix and the same CSRF header Dash's renderer sends.
 */

const ROUTE_PATH = '_dash-state/v1/';

/* eslint-disable no-console */
export const warn = (...args) => console.warn('dash_state:', ...args);
export const error = (...args) => console.error('dash_state:', ...args);
/* eslint-enable no-console */

let dashConfig = null;

/** The page's Dash config (the _dash-config script tag), read once. */
const getDashConfig = () => {
    if (dashConfig === null) {
        dashConfig = {};
        try {
            const element = document.getElementById('_dash-config');
            const parsed = element ? JSON.parse(element.textContent) : null;
            if (parsed && typeof parsed === 'object') {
                dashConfig = parsed;
            }
        } catch (e) {
            warn('could not read the _dash-config script tag:', e);
        }
    }
    return dashConfig;
};

const routeUrl = name => {
    let prefix = getDashConfig().requests_pathname_prefix;
    if (typeof prefix !== 'string' || !prefix) {
        prefix = '/';
    }
    if (!prefix.endsWith('/')) {
        prefix += '/';
    }
    return `${prefix}${ROUTE_PATH}${name}`;
};

/* The same CSRF header Dash's renderer sends with callbacks, if any. */
const csrfHeader = () => {
    const config = getDashConfig();
    const tokenName = config.csrf_token_name || '_csrf_token';
    const headerName = config.csrf_header_name || 'X-CSRFToken';
    const cookies = document.cookie ? document.cookie.split(';') : [];
    for (const cookie of cookies) {
        const at = cookie.indexOf('=');
        if (at > 0 && cookie.slice(0, at).trim() === tokenName) {
            let token = cookie.slice(at + 1).trim();
            try {
                token = decodeURIComponent(token);
            } catch (e) {
                // Not URI-encoded: use it as is.
            }
            return {[headerName]: token};
        }
    }
    return {};
};

const post = (name, body, {keepalive = false, signal, accept = 'application/json'} = {}) =>
    fetch(routeUrl(name), {
        method: 'POST',
        credentials: 'same-origin',
        keepalive,
        signal,
        headers: {
            'Content-Type': 'application/json',
            Accept: accept,
            ...csrfHeader(),
        },
        body: JSON.stringify(body),
    });

/**
 * POST a JSON body to one of the routes. Resolves to
 * {ok, status, payload} (payload null if the answer is not JSON); rejects
 * only on network errors. `keepalive` lets the request outlive the page
 * (bodies of at most 64 KiB in flight per page).
 */
export const postJson = async (name, body, {keepalive = false} = {}) => {
    const response = await post(name, body, {keepalive});
    let payload = null;
    try {
        payload = await response.json();
    } catch (e) {
        payload = null;
    }
    return {ok: response.ok, status: response.status, payload};
};

/**
 * POST a JSON body to a route that may answer with a stream of Server-Sent
 * Events (or with JSON): resolves to the fetch Response, for readEvents or
 * response.json(). `signal` (an AbortSignal) cancels the request and the stream.
 */
export const postStream = (name, body, signal) =>
    post(name, body, {signal, accept: 'text/event-stream, application/json'});

/**
 * Read a text/event-stream Response to its end, calling onEvent(name, data)
 * for each event: events end with a blank line, their `data:` lines are
 * joined with "\n", `event:` names them ('message' if not), lines starting
 * with ':' are comments (keepalives). An event cut off by the end of the
 * stream is dropped. Rejects if the stream fails or is aborted.
 */
export const readEvents = async (response, onEvent) => {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let name = '';
    let data = [];
    const readLine = line => {
        if (line === '') {
            if (data.length) {
                onEvent(name || 'message', data.join('\n'));
            }
            name = '';
            data = [];
        } else if (!line.startsWith(':')) {
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'event') {
                name = value;
            } else if (field === 'data') {
                data.push(value);
            }
        }
    };
    for (;;) {
        const {done, value} = await reader.read();
        if (done) {
            return;
        }
        buffer += decoder.decode(value, {stream: true});
        // A "\r" at the very end may be the first half of "\r\n": keep it for the next chunk.
        const lines = buffer.split(/\r\n|\r(?!$)|\n/);
        buffer = lines.pop();
        lines.forEach(readLine);
    }
};

export const describeFailure = ({status, payload}) =>
    `HTTP ${status}${payload && payload.error ? ` (${payload.error})` : ''}`;
