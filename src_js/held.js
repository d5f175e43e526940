/*
 * Which ServerStores keep their data in the browser (the "client" backend,
 * or mirrored because clientside callbacks use them). The server lists them
 * in Dash's config (the "dash_state" entry of the #_dash-config script, see
 * dash_state/glue/mirror.py), so a store that starts empty never uploads the
 * first value it is given only to learn that it keeps it.
 */
import {idKey} from './references';

let listed;

const fromConfig = () => {
    if (listed === undefined) {
        listed = {};
        try {
            const element = document.getElementById('_dash-config');
            const config = element ? JSON.parse(element.textContent) : {};
            if (config && typeof config.dash_state === 'object' && config.dash_state) {
                listed = config.dash_state;
            }
        } catch (e) {
            listed = {};
        }
    }
    return listed;
};

const fitsPattern = (pattern, id) => {
    const keys = Object.keys(pattern);
    return (
        keys.length === Object.keys(id).length &&
        keys.every(k => k in id && (Array.isArray(pattern[k]) || pattern[k] === id[k]))
    );
};

/** True if the server keeps this store's data in the browser, as dcc.Store does. */
export const heldInBrowser = id => {
    const held = fromConfig();
    if (held.all === true) {
        return true;
    }
    if (Array.isArray(held.ids) && held.ids.includes(idKey(id))) {
        return true;
    }
    return (
        id !== null &&
        typeof id === 'object' &&
        Array.isArray(held.patterns) &&
        held.patterns.some(pattern => pattern && typeof pattern === 'object' && fitsPattern(pattern, id))
    );
};
