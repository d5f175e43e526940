/*
 * POSTs to dash-state's routes (dash_state/routes.py), with the page's Dash
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

/**
 * POST a JSON body to one of the routes. Resolves to
 * {ok, status, payload} (payload null if the answer is not JSON); rejects
 * only on network errors. `keepalive` lets the request outlive the page
 * (bodies of at most 64 KiB in flight per page).
 */
export const postJson = async (name, body, {keepalive = false} = {}) => {
    const response = await fetch(routeUrl(name), {
        method: 'POST',
        credentials: 'same-origin',
        keepalive,
        headers: {
            'Content-Type': 'application/json',
            Accept: 'application/json',
            ...csrfHeader(),
        },
        body: JSON.stringify(body),
    });
    let payload = null;
    try {
        payload = await response.json();
    } catch (e) {
        payload = null;
    }
    return {ok: response.ok, status: response.status, payload};
};

export const describeFailure = ({status, payload}) =>
    `HTTP ${status}${payload && payload.error ? ` (${payload.error})` : ''}`;
