/*
 * The browser side of dash-state's HTTP routes (dash_state/routes.py):
 *
 * - touchScheduler: sliding expiry. One scheduler per page keeps the server
 *   values of all mounted ServerStores alive while the page is in use, with
 *   one batched `touch` request per round.
 * - deleteReference: drops a server value (ServerStore's clear_data).
 * - get: clientside access to the value behind a reference
 *   (window.dash_state.get).
 *
 * Only ids and references ever travel in these requests' bodies; the data
 * comes back only from `get`, on the caller's request.
 */

const ROUTE_PATH = '_dash-state/v1/';
const REFERENCE_PREFIX = 'dsr1.';

/** The first touch after the first store registers, to learn the interval. */
const FIRST_TOUCH_DELAY_MS = 1000;
/** Shortest interval between touches, whatever the server answers. */
const MIN_INTERVAL_MS = 1000;
/** Longest delay setTimeout handles (a longer one fires immediately). */
const MAX_INTERVAL_MS = 2147483647;
/** Retry delay after a failed touch when the server never told an interval. */
const FALLBACK_INTERVAL_MS = 60000;
/** Stores per touch request (the server refuses more). */
const MAX_STORES_PER_TOUCH = 200;

const ACTIVITY_EVENTS = ['pointerdown', 'keydown', 'wheel', 'touchstart'];
const LISTENER_OPTIONS = {capture: true, passive: true};

/* eslint-disable no-console */
const warn = (...args) => console.warn('dash_state:', ...args);
/* eslint-enable no-console */

/** True if `value` is a dash-state reference string ("dsr1...."). */
export const isReference = value =>
    typeof value === 'string' && value.startsWith(REFERENCE_PREFIX);

/*
 * Store ids as keys: a string id as is, a dict id as JSON with sorted keys
 * (as Dash's stringifyId), so equal ids compare equal. The component uses the
 * same key for browser storage, as dcc.Store does.
 */
export const idKey = id => {
    if (id && typeof id === 'object') {
        const sorted = {};
        Object.keys(id)
            .sort()
            .forEach(k => {
                sorted[k] = id[k];
            });
        return JSON.stringify(sorted);
    }
    return String(id);
};

/* ---------------------------------------------------------------- HTTP -- */

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
 * only on network errors.
 */
export const postJson = async (name, body) => {
    const response = await fetch(routeUrl(name), {
        method: 'POST',
        credentials: 'same-origin',
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

const describeFailure = ({status, payload}) =>
    `HTTP ${status}${payload && payload.error ? ` (${payload.error})` : ''}`;

/**
 * Delete the server value behind `reference` (fire and forget: a failure
 * is only logged). Resolves to true if the server deleted it.
 */
export const deleteReference = async reference => {
    try {
        const answer = await postJson('delete', {reference});
        if (!answer.ok) {
            warn(`could not delete a cleared store's value: ${describeFailure(answer)}`);
            return false;
        }
        return Boolean(answer.payload && answer.payload.deleted);
    } catch (e) {
        warn("could not delete a cleared store's value:", e);
        return false;
    }
};

/**
 * The data of a ServerStore, for clientside callbacks (available as
 * `window.dash_state.get`). In a clientside callback a ServerStore's `data`
 * is a reference string; this fetches the value it stands for from the
 * server (with the page's session cookie, so only references of this
 * browser session resolve).
 *
 *     app.clientside_callback(
 *         "async function(ref) {"
 *         "  const v = await window.dash_state.get(ref, 'my-store');"
 *         "  return v ? v.label : 'none';"
 *         "}",
 *         Output('out', 'children'), Input('my-store', 'data'))
 *
 * @param {*} reference The store's `data`: a "dsr1.…" reference, or the
 *     real data of a store on the "client" backend (or null), which is
 *     resolved as it is, without a request.
 * @param {string|Object} [id] The store's id (as in the layout); optional,
 *     the server only uses it in its log messages.
 * @returns {Promise<*>} The value (DataFrames as a list of row objects,
 *     Series and arrays as lists); null, after a console.warn, if the value
 *     has expired, was deleted or belongs to another session. Rejects if the
 *     request fails (network error, storage unavailable, bad request).
 */
export const get = async (reference, id) => {
    if (!isReference(reference)) {
        return reference === undefined ? null : reference;
    }
    const body = id === undefined ? {reference} : {id, reference};
    const answer = await postJson('get', body);
    if (answer.ok && answer.payload && 'data' in answer.payload) {
        return answer.payload.data;
    }
    const label = id === undefined ? 'a reference' : JSON.stringify(id);
    if (answer.status === 404) {
        warn(
            `get(${label}): the value is missing (expired, deleted or ` +
                `from another session): ${describeFailure(answer)}; returning null`
        );
        return null;
    }
    throw new Error(`dash_state.get(${label}) failed: ${describeFailure(answer)}`);
};

/* -------------------------------------------------------- touch rounds -- */

const clampInterval = ms => Math.min(Math.max(ms, MIN_INTERVAL_MS), MAX_INTERVAL_MS);

/**
 * Sliding expiry for every ServerStore on the page.
 *
 * Stores register (owner = component instance) while their data is a
 * reference. The first touch happens FIRST_TOUCH_DELAY_MS after the first
 * registration, then one every `interval` seconds as the server answers.
 * A round only sends a touch if the page was active since the last touch
 * (user input, the page becoming visible, or a store's data changing);
 * otherwise it is skipped and the timer keeps running. A store whose id has
 * not been touched yet brings the next round forward to
 * FIRST_TOUCH_DELAY_MS, so a short TTL of a newly added store is learned
 * in time. References the server reports dead are not sent again.
 */
class TouchScheduler {
    constructor() {
        // owner -> {id, key, reference, dead}
        this._stores = new Map();
        // id keys included in a successful touch since the schedule started
        this._learned = new Set();
        this._intervalMs = null;
        this._timer = null;
        this._dueAt = 0;
        this._inFlight = false;
        this._soon = false;
        this._active = false;
        this._failing = false;
        this._listening = false;
        // bumped by _stop, so a round in flight then is not applied after it
        this._generation = 0;
        this._round = this._round.bind(this);
        this._onActivity = () => {
            this._active = true;
        };
        this._onVisibility = () => {
            if (document.visibilityState === 'visible') {
                this._active = true;
            }
        };
    }

    /** Keep `reference` (the data of store `id`, held by `owner`) alive. */
    register(owner, id, reference) {
        const key = idKey(id);
        const known = this._stores.get(owner);
        if (known && known.reference === reference && known.key === key) {
            return;
        }
        this._stores.set(owner, {id, key, reference, dead: false});
        this._active = true; // a data change counts as activity
        this._listen();
        if (!this._learned.has(key)) {
            this._touchSoon();
        } else if (!this._timer && !this._inFlight) {
            this._schedule(this._intervalMs || FIRST_TOUCH_DELAY_MS);
        }
    }

    /** Stop touching `owner`'s reference (unmounted, or data changed). */
    unregister(owner) {
        if (this._stores.delete(owner) && this._stores.size === 0) {
            this._stop();
        }
    }

    /** Mark the page active (e.g. a Dash callback changed a store). */
    noteActivity() {
        this._active = true;
    }

    _listen() {
        if (this._listening) {
            return;
        }
        ACTIVITY_EVENTS.forEach(name =>
            window.addEventListener(name, this._onActivity, LISTENER_OPTIONS)
        );
        document.addEventListener('visibilitychange', this._onVisibility, LISTENER_OPTIONS);
        this._listening = true;
    }

    _stop() {
        if (this._timer) {
            clearTimeout(this._timer);
            this._timer = null;
        }
        if (this._listening) {
            ACTIVITY_EVENTS.forEach(name =>
                window.removeEventListener(name, this._onActivity, LISTENER_OPTIONS)
            );
            document.removeEventListener(
                'visibilitychange',
                this._onVisibility,
                LISTENER_OPTIONS
            );
            this._listening = false;
        }
        // The next registration starts over with a first touch.
        this._generation += 1;
        this._learned.clear();
        this._intervalMs = null;
        this._soon = false;
    }

    _schedule(delayMs) {
        if (this._timer) {
            clearTimeout(this._timer);
        }
        const delay = clampInterval(delayMs);
        this._dueAt = Date.now() + delay;
        this._timer = setTimeout(this._round, delay);
    }

    _touchSoon() {
        if (this._inFlight) {
            this._soon = true; // after the current round
        } else if (!this._timer || this._dueAt > Date.now() + FIRST_TOUCH_DELAY_MS) {
            this._schedule(FIRST_TOUCH_DELAY_MS);
        }
    }

    _nextDelay() {
        return this._intervalMs || FALLBACK_INTERVAL_MS;
    }

    async _round() {
        this._timer = null;
        const entries = [...this._stores.values()].filter(entry => !entry.dead);
        if (!entries.length || !this._active) {
            this._schedule(this._nextDelay());
            return;
        }
        this._active = false;
        this._inFlight = true;
        this._soon = false;
        let ok = false;
        try {
            ok = await this._touch(entries, this._generation);
        } finally {
            this._inFlight = false;
        }
        if (!ok) {
            this._active = true; // the activity was not credited: try again
        }
        if (this._stores.size === 0) {
            return; // everything unregistered meanwhile (_stop ran)
        }
        this._schedule(this._soon ? FIRST_TOUCH_DELAY_MS : this._nextDelay());
        this._soon = false;
    }

    /* One round: touch requests of up to MAX_STORES_PER_TOUCH stores each. */
    async _touch(entries, generation) {
        const batches = [];
        for (let i = 0; i < entries.length; i += MAX_STORES_PER_TOUCH) {
            batches.push(entries.slice(i, i + MAX_STORES_PER_TOUCH));
        }
        let failure = null;
        const intervals = [];
        await Promise.all(
            batches.map(async batch => {
                try {
                    const answer = await postJson('touch', {
                        stores: batch.map(({id, reference}) => ({id, reference})),
                    });
                    const payload = answer.payload;
                    if (!answer.ok || !payload || !Array.isArray(payload.alive)) {
                        failure = failure || describeFailure(answer);
                        return;
                    }
                    if (generation !== this._generation) {
                        return;
                    }
                    batch.forEach((entry, i) => {
                        if (payload.alive[i] === false) {
                            entry.dead = true;
                        }
                        this._learned.add(entry.key);
                    });
                    const seconds = Number(payload.interval);
                    if (Number.isFinite(seconds) && seconds > 0) {
                        intervals.push(seconds * 1000);
                    }
                } catch (e) {
                    failure = failure || e;
                }
            })
        );
        if (generation !== this._generation) {
            return true; // stopped meanwhile: these stores are gone
        }
        if (intervals.length) {
            this._intervalMs = clampInterval(Math.min(...intervals));
        }
        if (failure) {
            // One warning per outage, not one per round.
            if (!this._failing) {
                warn('touching the server values of ServerStores failed:', failure);
            }
            this._failing = true;
            return false;
        }
        this._failing = false;
        return true;
    }
}

/** The page's one scheduler, shared by all ServerStores. */
export const touchScheduler = new TouchScheduler();
