/*
 * Where dash-state meets Dash's renderer (dash 4.4). Each of these uses the
 * renderer's state or globals rather than a public component API, so each is
 * covered by the browser tests (tests/test_clientside_writes.py and
 * tests/test_parity_browser.py) and fails loudly if Dash changes it:
 *
 * - request hints: every callback request carries, for its outputs that are
 *   ServerStores, the reference the store holds (`payload.dash_state`), so a
 *   server-side Patch() applies to exactly what this tab holds, and the
 *   references the page released since the last request. Installed by
 *   wrapping the renderer's `request_pre` hook (redux state `hooks`).
 * - a silent update: after a value written in the browser was uploaded, the
 *   store's `data` becomes its reference without firing the store's callbacks
 *   a second time (an ON_PROP_CHANGE action without notifyObservers, which is
 *   what the renderer itself does for props no callback watches).
 * - clientside Patch: `dash_clientside.Patch.prototype.build` is wrapped so
 *   that the operations of a Patch the renderer applied to a reference string
 *   can be recovered (replaying the renderer's own semantics with ramda to
 *   find the patch that made exactly what the store holds) and applied to the
 *   real value on the server.
 */
import {
    append,
    assocPath,
    concat,
    dissocPath,
    empty,
    equals,
    insert,
    is,
    path,
    prepend,
    reverse,
} from 'ramda';
import {REFERENCE_ANYWHERE, REFERENCE_CORE, idKey} from './references';
import {releaseOnLeave, releaseScheduler} from './values';

const PATCH_MEMORY_MS = 5000;

/* idKey -> Set of mounted ServerStore instances with that id. */
const mounted = new Map();

export const registerStore = (instance, key) => {
    if (!mounted.has(key)) {
        mounted.set(key, new Set());
    }
    mounted.get(key).add(instance);
    installRequestHook();
    capturePatches();
    releaseOnLeave(heldOnlyHere);
};

/* What the mounted stores hold that dies with the page (see ServerStore.leavingRelease). */
const heldOnlyHere = () => {
    const held = [];
    mounted.forEach(instances =>
        instances.forEach(instance => {
            const entry = instance.leavingRelease();
            if (entry) {
                held.push(entry);
            }
        })
    );
    return held;
};

/* Every mounted ServerStore: {id, key, data} (data as the renderer holds it now). */
export const mountedStores = () =>
    [...mounted.entries()].map(([key, instances]) => {
        const instance = instances.values().next().value;
        return {id: instance.props.id, key, data: currentData(instance)};
    });

export const unregisterStore = (instance, key) => {
    const set = mounted.get(key);
    if (set) {
        set.delete(instance);
        if (!set.size) {
            mounted.delete(key);
        }
    }
};

const flatten = outputs =>
    (Array.isArray(outputs) ? outputs : [outputs]).reduce(
        (all, item) => all.concat(Array.isArray(item) ? flatten(item) : [item]),
        []
    );

/* Adds `dash_state: {stores, prev}` to a callback request for its ServerStore outputs. */
const addHints = payload => {
    if (!payload || !payload.outputs) {
        return;
    }
    const stores = [];
    const prev = {};
    flatten(payload.outputs).forEach(output => {
        if (!output || typeof output !== 'object') {
            return;
        }
        if (String(output.property || '').split('@')[0] !== 'data') {
            return;
        }
        const key = idKey(output.id);
        const instances = mounted.get(key);
        if (!instances || !instances.size) {
            return;
        }
        stores.push(key);
        const data = currentData(instances.values().next().value);
        if (data !== undefined) {
            prev[key] = data; // a reference, null, or a value written in the browser not yet uploaded
        }
    });
    const release = releaseScheduler.take();
    if (stores.length || release.length) {
        payload.dash_state = {stores, prev, release};
    }
};

const installRequestHook = () => {
    (window.dash_stores || []).forEach(store => {
        const hooks = store.getState().hooks || {};
        if (hooks.request_pre && hooks.request_pre.dashState) {
            return;
        }
        const previous = hooks.request_pre;
        const requestPre = payload => {
            addHints(payload);
            if (previous) {
                previous(payload);
            }
        };
        requestPre.dashState = true;
        store.dispatch({type: 'SET_HOOKS', payload: {...hooks, request_pre: requestPre}});
    });
};

const pathGet = (obj, path) =>
    path.reduce((node, step) => (node === null || node === undefined ? node : node[step]), obj);

/* The renderer's layout node of a mounted ServerStore, and the redux store holding it. */
const layoutNode = instance => {
    const path = instance.context && instance.context.componentPath;
    if (!Array.isArray(path)) {
        return null;
    }
    const key = idKey(instance.props.id);
    for (const store of window.dash_stores || []) {
        const node = pathGet(store.getState().layout, path);
        if (node && node.props && idKey(node.props.id) === key) {
            return {node, store, path};
        }
    }
    return null;
};

/*
 * The store's `data` as the renderer holds it now. A component's props can
 * lag behind the renderer's state for changes the component made itself
 * (setProps while mounting), so callbacks and uploads use this instead.
 */
export const currentData = instance => {
    const found = layoutNode(instance);
    return found ? found.node.props.data : instance.props.data;
};

/**
 * Set `data` of a mounted ServerStore without firing its callbacks (they
 * already ran with the value this reference now stands for). False if the
 * renderer's state could not be found; the caller then uses setProps.
 */
export const silentSetData = (instance, value) => {
    const found = layoutNode(instance);
    if (!found) {
        return false;
    }
    found.store.dispatch({
        type: 'ON_PROP_CHANGE',
        payload: {itempath: found.path, props: {data: value}, renderType: 'internal', source: 'response'},
    });
    return true;
};

/* Recently built clientside patches: {operations (as built), at, claimed}. */
const recentPatches = [];

const capturePatches = () => {
    const Patch = window.dash_clientside && window.dash_clientside.Patch;
    if (!Patch || !Patch.prototype.build || Patch.prototype.build.dashState) {
        return;
    }
    const build = Patch.prototype.build;
    const captured = function (...args) {
        const built = build.apply(this, args);
        if (built && Array.isArray(built.operations)) {
            const now = Date.now();
            while (recentPatches.length && recentPatches[0].at < now - PATCH_MEMORY_MS) {
                recentPatches.shift();
            }
            // The renderer rewrites each operation's location when it applies it: keep a copy.
            const operations = built.operations.map(op => ({...op, location: [...(op.location || [])]}));
            recentPatches.push({operations, at: now, claimed: false});
        }
        return built;
    };
    captured.dashState = true;
    Patch.prototype.build = captured;
};

/*
 * The renderer's patch semantics (dash-renderer/src/actions/patch.ts), with
 * the same ramda functions, to tell which captured patch turned `base` (a
 * reference string) into what the store now holds.
 */
const locationIndex = (value, previous) =>
    is(Number, value) && value < 0 ? previous.length + value : value;

const locationPath = (location, obj) => {
    const current = [];
    for (const step of location) {
        current.push(locationIndex(step, path(current, obj)));
    }
    return current;
};

const HANDLERS = {
    Assign: (prev, loc, p) => assocPath(loc, p.value, prev),
    Merge: (prev, loc, p) => assocPath(loc, {...path(loc, prev), ...p.value}, prev),
    Extend: (prev, loc, p) => assocPath(loc, concat(path(loc, prev), p.value), prev),
    Delete: (prev, loc) => dissocPath(loc, prev),
    Insert: (prev, loc, p) => {
        const at = path(loc, prev);
        return assocPath(loc, insert(locationIndex(p.index, at), p.value, at), prev);
    },
    Append: (prev, loc, p) => assocPath(loc, append(p.value, path(loc, prev)), prev),
    Prepend: (prev, loc, p) => assocPath(loc, prepend(p.value, path(loc, prev)), prev),
    Add: (prev, loc, p) => assocPath(loc, path(loc, prev) + p.value, prev),
    Sub: (prev, loc, p) => assocPath(loc, path(loc, prev) - p.value, prev),
    Mul: (prev, loc, p) => assocPath(loc, path(loc, prev) * p.value, prev),
    Div: (prev, loc, p) => assocPath(loc, path(loc, prev) / p.value, prev),
    Clear: (prev, loc) => assocPath(loc, empty(path(loc, prev)), prev),
    Reverse: (prev, loc) => assocPath(loc, reverse(path(loc, prev)), prev),
    Remove: (prev, loc, p) => assocPath(loc, path(loc, prev).filter(item => !equals(item, p.value)), prev),
};

const emulate = (previous, operations) => {
    let value = previous;
    for (const op of operations) {
        const handler = HANDLERS[op.operation];
        if (!handler) {
            throw new Error(`unknown operation ${op.operation}`);
        }
        value = handler(value, locationPath(op.location || [], value), op.params || {});
    }
    return value;
};

/*
 * The operations of the clientside Patch that the renderer applied to the
 * reference `base` to make `patched`: the first unclaimed recent patch that
 * gives exactly `patched` when applied the renderer's way (so a patch that
 * failed, or one meant for another output, is never taken). Null if none.
 */
export const takeAppliedPatch = (base, patched) => {
    for (const entry of recentPatches) {
        if (entry.claimed) {
            continue;
        }
        let result;
        try {
            result = emulate(base, entry.operations);
        } catch (e) {
            continue;
        }
        if (equals(result, patched)) {
            entry.claimed = true;
            return entry.operations;
        }
    }
    return null;
};

/* A string, or the single characters of an array or of an object's numeric keys, as text. */
const asText = value => {
    if (typeof value === 'string') {
        return value;
    }
    if (value && typeof value === 'object') {
        const chars = Array.isArray(value)
            ? value
            : Object.keys(value)
                  .filter(k => /^\d+$/.test(k))
                  .sort((a, b) => a - b)
                  .map(k => value[k]);
        return chars.map(c => (typeof c === 'string' && c.length === 1 ? c : '\u0000')).join('');
    }
    return null;
};

const LOOSE = /dsr2\.|(memory|local|redis|database)\.[A-Za-z0-9_-]{22}\.[scaug][0-9a-z]{7}\./;

/*
 * Whether the server recognises `value` as a patched reference (the same
 * test as looks_patched in dash_state/glue/clientside.py): then the store's
 * readers that fired with it got the patch's real result.
 */
export const looksPatched = value => {
    if (typeof value === 'string') {
        return referenceIn(value) !== null;
    }
    const text = asText(value);
    return text !== null && (LOOSE.test(text) || LOOSE.test(text.split('').reverse().join('')));
};

/*
 * The reference whose characters `value` holds (what the renderer makes of a
 * reference string when it applies a clientside Patch to it), forwards or
 * reversed, even without its first characters; null if there is none.
 */
export const referenceIn = value => {
    const text = asText(value);
    if (text === null) {
        return null;
    }
    const whole = typeof value === 'string'; // string operations only add around it, or reverse it
    for (const candidate of [text, text.split('').reverse().join('')]) {
        const match = candidate.match(whole ? REFERENCE_ANYWHERE : REFERENCE_CORE);
        if (match) {
            return whole ? match[0] : `dsr2.${match[0]}`;
        }
    }
    return null;
};
