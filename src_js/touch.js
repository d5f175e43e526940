/*
 * Sliding expiry: one scheduler per page keeps the server values of all
 * mounted ServerStores alive while the page is in use, with one batched
 * `touch` request per round.
 */
import {describeFailure, postJson, warn} from './http';
import {idKey} from './references';

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
