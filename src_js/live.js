/*
 * Live stores: one channel per page brings the new values of user- and
 * app-scoped ServerStores with live=True, changed anywhere (another tab,
 * worker or host), as if a callback on this page had written them.
 *
 * Protocol (POST _dash-state/v1/live, see dash_state/glue/routes.py):
 *   request  {"stores": [{"id", "reference"}], "wait": true}
 *            (reference: the store's data if it is a reference, else null)
 *   answer   text/event-stream: events whose data is
 *            {"changes": [{"id", "reference", "version"}]} (the first may be
 *            `event: hello` with {"transport": "sse", "changes": [...]}); when
 *            the server ends the stream, reconnect at once (at most one stream
 *            opened a second).
 *   or       application/json {"changes": [...], "transport": "poll", "interval": s}:
 *            then the same request with "wait": false every `interval` seconds.
 * Failures retry after 1, 2, 4, 8, then 15 s (plus jitter); 403, 404, 415
 * and 422 stop the channel for the page's life, with one console error.
 */
import {describeFailure, error, postStream, readEvents, warn} from './http';
import {idKey, isReference, isVersioned, isWellFormed, versionOf} from './references';
import {currentData} from './renderer';

/** Wait for more stores to mount or unmount before reconnecting with the new set. */
const DEBOUNCE_MS = 50;
const MAX_BACKOFF_S = 15;
/** At most one stream opened per this time (a server ending streams at once makes no loop). */
const MIN_STREAM_MS = 1000;
/** Poll interval if a poll answer does not tell one. */
const FALLBACK_POLL_S = 15;
const FATAL_STATUSES = [403, 404, 415, 422];

/*
 * Apply one change to a live store: a newer reference becomes its data and
 * fires its callbacks (a value gone makes it null); the same or an older
 * version of what it holds is ignored.
 */
const applyChange = (owner, reference) => {
    const data = currentData(owner);
    const {setProps} = owner.props;
    if (!setProps || reference === data) {
        return;
    }
    if (reference === null) {
        if (isReference(data)) {
            setProps({data: null, modified_timestamp: Date.now()});
        }
        return;
    }
    if (!isWellFormed(reference) || (isVersioned(data) && versionOf(reference) <= versionOf(data))) {
        return;
    }
    setProps({data: reference, modified_timestamp: Date.now()});
};

class LiveChannel {
    constructor() {
        this._owners = new Set(); // mounted ServerStore instances with live updates
        this._controller = null; // AbortController of the request in flight
        this._timer = null;
        this._failures = 0;
        this._stopped = false;
        this._opened = false;
        this.status = {transport: null, connected: false, messages: 0, reconnects: 0};
    }

    /** Follow `owner` (a mounted ServerStore) while `wanted`, else stop following it. */
    follow(owner, wanted) {
        if (wanted === this._owners.has(owner)) {
            return;
        }
        if (wanted) {
            this._owners.add(owner);
        } else {
            this._owners.delete(owner);
        }
        this._abort();
        if (this._owners.size) {
            this._schedule(DEBOUNCE_MS);
        }
    }

    _abort() {
        clearTimeout(this._timer);
        this._timer = null;
        if (this._controller) {
            this._controller.abort();
            this._controller = null;
        }
        this.status.connected = false;
    }

    _schedule(delayMs, poll = false) {
        clearTimeout(this._timer);
        this._timer = setTimeout(() => this._request(poll), delayMs);
    }

    _body() {
        const stores = new Map();
        this._owners.forEach(owner => {
            const data = currentData(owner);
            stores.set(idKey(owner.props.id), {id: owner.props.id, reference: isReference(data) ? data : null});
        });
        return {stores: [...stores.values()], wait: this.status.transport !== 'poll'};
    }

    _receive(payload) {
        if (!payload || !Array.isArray(payload.changes)) {
            return;
        }
        this.status.messages += 1;
        payload.changes.forEach(change => {
            if (change && typeof change === 'object' && 'reference' in change) {
                const key = idKey(change.id);
                this._owners.forEach(owner => {
                    if (idKey(owner.props.id) === key) {
                        applyChange(owner, change.reference);
                    }
                });
            }
        });
    }

    /* One request: a stream read to its end, or one poll answer. Then schedules the next. */
    async _request(poll) {
        this._timer = null;
        if (this._stopped || !this._owners.size) {
            return;
        }
        if (!poll && this._opened) {
            this.status.reconnects += 1;
        }
        this._opened = true;
        const controller = new AbortController();
        this._controller = controller;
        let next;
        try {
            next = await this._exchange(controller.signal);
        } catch (e) {
            next = controller.signal.aborted ? null : this._failed(e);
        }
        if (this._controller !== controller) {
            return; // aborted: the new set of stores connects on its own
        }
        this._controller = null;
        if (next) {
            this._schedule(next.delayMs, next.poll);
        }
    }

    /* Send the request and read its answer: what to do next ({delayMs, poll}, or null to stop). */
    async _exchange(signal) {
        const response = await postStream('live', this._body(), signal);
        if (!response.ok) {
            let payload = null;
            try {
                payload = await response.json();
            } catch (e) {
                payload = null;
            }
            const failure = describeFailure({status: response.status, payload});
            if (FATAL_STATUSES.includes(response.status)) {
                this._stopped = true;
                this.status.connected = false;
                error(`live updates of ServerStores are off: the server answered ${failure}.`);
                return null;
            }
            return this._failed(failure);
        }
        const type = response.headers.get('Content-Type') || '';
        if (type.includes('text/event-stream')) {
            const opened = Date.now();
            this._connected('sse');
            await readEvents(response, (name, data) => {
                try {
                    this._receive(JSON.parse(data));
                } catch (e) {
                    warn(`a live update (${name}) could not be read:`, e);
                }
            });
            this.status.connected = false;
            return {delayMs: Math.max(0, opened + MIN_STREAM_MS - Date.now())};
        }
        const payload = await response.json();
        this._connected('poll');
        this._receive(payload);
        const seconds = Number(payload && payload.interval);
        return {delayMs: (Number.isFinite(seconds) && seconds > 0 ? seconds : FALLBACK_POLL_S) * 1000, poll: true};
    }

    _connected(transport) {
        if (this._failures) {
            warn('live updates of ServerStores are back.');
        }
        this._failures = 0;
        this.status.transport = transport;
        this.status.connected = true;
    }

    /* A failed request: warn once per outage, retry after 1, 2, 4, 8, then 15 s, plus up to 1 s. */
    _failed(failure) {
        if (!this._failures) {
            warn('live updates of ServerStores failed, retrying:', failure);
        }
        this.status.connected = false;
        const seconds = Math.min(2 ** this._failures, MAX_BACKOFF_S);
        this._failures += 1;
        return {delayMs: (seconds + Math.random()) * 1000};
    }
}

/** The page's one live channel, shared by all ServerStores. */
export const liveChannel = new LiveChannel();

/** For tests: {transport ('sse', 'poll' or null), connected, messages, reconnects}. */
export const liveStatus = () => ({...liveChannel.status});
