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
 *   can be recovered and applied to the real value on the server.
 */
import {REFERENCE_SHAPE, idKey, isReference} from './references';
import {releaseScheduler} from './values';

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
        if (isReference(data)) {
            prev[key] = data;
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

/* Recently built clientside patches: {patch, locations, at, claimed}. */
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
            recentPatches.push({
                patch: built,
                locations: built.operations.map(op => op.location),
                at: now,
                claimed: false,
            });
        }
        return built;
    };
    captured.dashState = true;
    Patch.prototype.build = captured;
};

/*
 * The operations of the clientside Patch the renderer applied to a reference
 * string and turned into `patched`: the renderer replaces each operation's
 * location array when it applies it, which tells applied patches from the
 * others. Returns the operations with their original locations, or null.
 */
export const takeAppliedPatch = patched => {
    const applied = recentPatches.filter(
        entry =>
            !entry.claimed &&
            entry.patch.operations.some((op, i) => op.location !== entry.locations[i])
    );
    const fits = entry =>
        entry.locations.every(location => {
            const first = Array.isArray(location) && location.length ? location[0] : undefined;
            return first === undefined || (patched !== null && typeof patched === 'object' && String(first) in patched);
        });
    const entry = applied.find(fits) || (applied.length === 1 ? applied[0] : null);
    if (!entry) {
        return null;
    }
    entry.claimed = true;
    return entry.patch.operations.map((op, i) => ({...op, location: entry.locations[i]}));
};

/* The reference a clientside Patch was applied to, if `value` is what the renderer made of it. */
export const patchedReference = value => {
    let chars = [];
    if (Array.isArray(value)) {
        chars = value;
    } else if (value && typeof value === 'object') {
        for (let i = 0; i < 300 && typeof value[String(i)] === 'string'; i++) {
            chars.push(value[String(i)]);
        }
    } else {
        return null;
    }
    let text = '';
    for (const char of chars) {
        if (typeof char !== 'string' || char.length !== 1) {
            break;
        }
        text += char;
    }
    const match = text.match(REFERENCE_SHAPE);
    return match ? match[0] : null;
};
