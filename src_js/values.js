/*
 * Server values the page lets go of, and values the browser wrote.
 *
 * - deleteReference: clear_data deletes the server value.
 * - releaseScheduler: a reference the page replaced (a newer value arrived)
 *   is released in a batch a moment later, so the server holds one value per
 *   store and tab instead of one per write; and when the page goes away
 *   (pagehide), what it held only in memory is released too (see leave()).
 * - putValue / patchValue: values written in the browser (clientside
 *   callbacks, running=, clientside Patch) are uploaded and come back as a
 *   reference.
 * - get: window.dash_state.get for clientside callbacks.
 */
import {describeFailure, postJson, warn} from './http';
import {isReference} from './references';

/**
 * Delete the server value behind `reference` (fire and forget: a failure
 * is only logged). Resolves to true if the server deleted it.
 */
export const deleteReference = async (reference, id) => {
    try {
        const answer = await postJson('delete', {id, reference});
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

/*
 * How long released references wait for a callback request to ride on
 * before they get a request of their own.
 */
const RELEASE_DELAY_MS = 1000;
const MAX_PER_RELEASE = 200; // the route's MAX_STORES_PER_REQUEST
/* Browsers allow 64 KiB of keepalive request bodies in flight per page: stay below. */
const KEEPALIVE_BYTES = 60 * 1024;
const utf8Length = text => new TextEncoder().encode(text).length;

/*
 * References the page replaced with newer ones: the server deletes their
 * values (unless one is the store's latest value or initial layout data), so
 * one tab clicking a hundred times holds one value, not a hundred. They
 * travel with the page's next callback request (see renderer.js), or, if
 * none comes within RELEASE_DELAY_MS, in a request of their own.
 */
class ReleaseScheduler {
    constructor() {
        this._pending = [];
        this._timer = null;
        this._flush = this._flush.bind(this);
    }

    add(id, reference) {
        this._pending.push({id, reference});
        if (!this._timer) {
            this._timer = setTimeout(this._flush, RELEASE_DELAY_MS);
        }
    }

    /* The pending releases, for a callback request to carry (at most MAX_PER_RELEASE). */
    take() {
        const batch = this._pending.splice(0, MAX_PER_RELEASE);
        if (!this._pending.length && this._timer) {
            clearTimeout(this._timer);
            this._timer = null;
        }
        return batch;
    }

    /*
     * The page is going away: send what is pending and the references in
     * `held` ({id, reference}, what the page holds only in memory) in
     * keepalive requests, which outlive the page. navigator.sendBeacon cannot
     * be used: the routes take only Content-Type application/json (their CSRF
     * defence), which Chromium's sendBeacon refuses to send. What does not
     * fit in KEEPALIVE_BYTES expires with its TTL (or STATE_VALUES_PER_STORE
     * evicts it).
     */
    leave(held) {
        if (this._timer) {
            clearTimeout(this._timer);
            this._timer = null;
        }
        const seen = new Set();
        const entries = held.concat(this._pending.splice(0)).filter(entry => {
            const fresh = !seen.has(entry.reference);
            seen.add(entry.reference);
            return fresh;
        });
        let budget = KEEPALIVE_BYTES;
        while (entries.length) {
            const batch = [];
            let size = utf8Length('{"stores":[]}');
            while (entries.length && batch.length < MAX_PER_RELEASE) {
                const bytes = utf8Length(JSON.stringify(entries[0])) + 1;
                if (size + bytes > budget) {
                    break;
                }
                batch.push(entries.shift());
                size += bytes;
            }
            if (!batch.length) {
                return;
            }
            budget -= size;
            postJson('release', {stores: batch}, {keepalive: true}).catch(() => {
                // Not released: the values expire with their TTL instead.
            });
        }
    }

    async _flush() {
        this._timer = null;
        const batch = this._pending.splice(0, MAX_PER_RELEASE);
        if (this._pending.length) {
            this._timer = setTimeout(this._flush, RELEASE_DELAY_MS);
        }
        if (!batch.length) {
            return;
        }
        try {
            await postJson('release', {stores: batch});
        } catch (e) {
            // Not released: the values expire with their TTL instead.
        }
    }
}

export const releaseScheduler = new ReleaseScheduler();

let leaving = null;

/*
 * Release what the page holds when it goes away (a reload, a navigation,
 * the tab closing): `collect()` lists the {id, reference} of the page's
 * stores whose reference dies with the page. The server keeps a store's
 * latest value until the store's next write, so one browser reloading a page
 * keeps one value per store, not one per reload. Not on visibilitychange: a
 * tab switched away comes back. A page that may come back from the
 * back/forward cache (pagehide with `persisted`) keeps its references, as
 * it would come back holding released values; it only sends what it had
 * already let go of. Installed once per page.
 */
export const releaseOnLeave = collect => {
    if (leaving || typeof window === 'undefined') {
        return;
    }
    leaving = event => releaseScheduler.leave(event && event.persisted ? [] : collect());
    window.addEventListener('pagehide', leaving);
};

/**
 * Upload a value the browser wrote into store `id`. Resolves to
 * {reference}, {client: true} for a store on the client backend (its data
 * stays in the browser), or {status, message} when the server refused it.
 */
export const putValue = async (id, data) => {
    const answer = await postJson('put', {id, data});
    if (answer.ok && answer.payload && isReference(answer.payload.reference)) {
        return {reference: answer.payload.reference};
    }
    if (answer.ok && answer.payload && answer.payload.client) {
        return {client: true};
    }
    return {status: answer.status, message: describeFailure(answer)};
};

/**
 * Send a clientside Patch's `operations` to be applied on the server to the
 * value `base` stands for; `patched` is what the renderer made of them (the
 * server files the result under it, for callbacks that already received it).
 */
export const patchValue = async (id, base, patched, operations) => {
    const answer = await postJson('patch', {id, base, patched, operations});
    if (answer.ok && answer.payload && isReference(answer.payload.reference)) {
        return {reference: answer.payload.reference};
    }
    return {status: answer.status, message: describeFailure(answer)};
};

/**
 * The data of a ServerStore, for clientside callbacks (available as
 * `window.dash_state.get`). In a clientside callback a ServerStore's `data`
 * is a reference string; this fetches the value it stands for from the
 * server, for stores whose settings allow it (`client_read = true` in
 * `[STATE_STORES.<id>]`; off by default, so server data stays on the server).
 *
 *     app.clientside_callback(
 *         "async function(ref) {"
 *         "  const v = await window.dash_state.get(ref, 'my-store');"
 *         "  return v ? v.label : 'none';"
 *         "}",
 *         Output('out', 'children'), Input('my-store', 'data'))
 *
 * @param {*} reference The store's `data`: a reference, or the real data of
 *     a store on the "client" backend (or null), returned as it is.
 * @param {string|Object} id The store's id (as in the layout): a reference is
 *     only valid for its own store.
 * @returns {Promise<*>} The value (DataFrames as a list of row objects,
 *     Series and arrays as lists); null, after a console.warn, if the value
 *     has expired, was deleted or belongs to another session or store.
 *     Rejects if the request fails (the store does not allow clientside
 *     reads, the value is too large, storage unavailable, network error).
 */
export const get = async (reference, id) => {
    if (!isReference(reference)) {
        return reference === undefined ? null : reference;
    }
    if (id === undefined || id === null) {
        throw new Error('dash_state.get(reference, id): the store id is required');
    }
    const answer = await postJson('get', {id, reference});
    if (answer.ok && answer.payload && 'data' in answer.payload) {
        return answer.payload.data;
    }
    const label = JSON.stringify(id);
    if (answer.status === 404) {
        warn(
            `get(${label}): the value is missing (expired, deleted or ` +
                `from another session or store): ${describeFailure(answer)}; returning null`
        );
        return null;
    }
    throw new Error(`dash_state.get(${label}) failed: ${describeFailure(answer)}`);
};
