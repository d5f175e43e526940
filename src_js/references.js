/*
 * References: what a ServerStore holds in the browser instead of its data
 * ("dsr2.<backend>.<key>.<scope><tag>.<signature>", see
 * dash_state/core/references.py). Nothing here can read or forge one; these
 * helpers only tell references apart from data, and tell which store a
 * reference was made for.
 */

const REFERENCE_PREFIX = 'dsr2.';
export const REFERENCE_SHAPE = /^dsr2\.[a-z]{1,16}\.[A-Za-z0-9_-]{22}\.[scaug][0-9a-z]{7}\.[A-Za-z0-9_-]{22}/;
/* A whole reference anywhere in a text, and one after its "dsr2." prefix. */
export const REFERENCE_ANYWHERE = /dsr2\.[a-z]{1,16}\.[A-Za-z0-9_-]{22}\.[scaug][0-9a-z]{7}\.[A-Za-z0-9_-]{22}/;
export const REFERENCE_CORE = /[a-z]{1,16}\.[A-Za-z0-9_-]{22}\.[scaug][0-9a-z]{7}\.[A-Za-z0-9_-]{22}/;

/** True if `value` is a dash-state reference string ("dsr2....", or an old "dsr1...."). */
export const isReference = value =>
    typeof value === 'string' &&
    (value.startsWith(REFERENCE_PREFIX) || value.startsWith('dsr1.'));

/*
 * A reference's scope: "s" written by a server callback, "c" written in the
 * browser, "a" initial layout data shared by every visitor, "u" the value of
 * a user-scoped store (shared by all the user's tabs), "g" the value of an
 * app-scoped store (shared by everybody).
 */
export const referenceScope = reference => {
    const parts = reference.split('.');
    return parts.length === 5 ? parts[3].charAt(0) : '';
};

/* True for a reference the page shares with others ("a", "u", "g"): the page never releases it. */
export const isShared = reference => ['a', 'u', 'g'].includes(referenceScope(reference));

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/*
 * The version of a user- or app-scoped value ("u"/"g" reference): the first
 * six characters of its key, base64url, big-endian (36 bits, see
 * dash_state/core/versions.py). 0 for any other reference or value.
 */
export const versionOf = reference =>
    isVersioned(reference)
        ? [...reference.split('.')[2].slice(0, 6)].reduce((version, char) => version * 64 + BASE64URL.indexOf(char), 0)
        : 0;

/** True for a well-formed reference of a user- or app-scoped value ("u", "g"), which carries a version. */
export const isVersioned = reference =>
    isWellFormed(reference) && ['u', 'g'].includes(referenceScope(reference));

/*
 * FNV-1a (32 bit) of a store id key, in base 36, seven digits: the tag in
 * every reference, so a reference of another store is recognised here
 * (dash_state/core/references.py computes the same).
 */
export const storeTag = key => {
    let hash = 0x811c9dc5;
    for (let i = 0; i < key.length; i++) {
        hash ^= key.charCodeAt(i);
        hash = Math.imul(hash, 0x01000193) >>> 0;
    }
    return hash.toString(36).padStart(7, '0');
};

/** True if `reference` was made for the store whose id key is `key`. */
export const belongsTo = (reference, key) => {
    const parts = reference.split('.');
    return parts.length === 5 && parts[3].slice(1) === storeTag(key);
};

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

/** True if `value` has the exact shape of a current reference (not that it is valid). */
export const isWellFormed = value =>
    typeof value === 'string' && value.length <= 256 && REFERENCE_SHAPE.test(value) &&
    value.match(REFERENCE_SHAPE)[0] === value;
