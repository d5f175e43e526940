/*
 * Where a ServerStore keeps its data in the browser (storage_type), as
 * dcc.Store does: each back end stores values under a string key and keeps
 * a modification time.
 */

/** Per-instance store: lives as long as the component instance. */
export class MemoryBackstore {
    constructor() {
        this.isWeb = false;
        this._data = {};
        this._modified = -1;
    }

    getItem(key) {
        return this._data[key];
    }

    setItem(key, value) {
        this._data[key] = value;
        this._modified = Date.now();
    }

    removeItem(key) {
        delete this._data[key];
        this._modified = Date.now();
    }

    getModified() {
        return this._modified;
    }
}

/**
 * window.localStorage / window.sessionStorage: the value is kept as JSON
 * under `key`, the write time under `${key}-timestamp`. Any of these calls
 * may throw (quota exceeded, storage disabled); the component catches that.
 */
export class WebBackstore {
    constructor(storage) {
        this.isWeb = true;
        this.storage = storage;
    }

    getItem(key) {
        const raw = this.storage.getItem(key);
        if (raw === null) {
            return null;
        }
        try {
            return JSON.parse(raw);
        } catch (e) {
            // Not JSON (written by something else): treat it as absent.
            return null;
        }
    }

    setItem(key, value) {
        this.storage.setItem(key, JSON.stringify(value));
        this.storage.setItem(`${key}-timestamp`, String(Date.now()));
    }

    removeItem(key) {
        this.storage.removeItem(key);
        this.storage.removeItem(`${key}-timestamp`);
    }

    getModified(key) {
        const ts = Number.parseInt(
            this.storage.getItem(`${key}-timestamp`),
            10
        );
        return Number.isNaN(ts) ? -1 : ts;
    }
}

/** window.localStorage or window.sessionStorage for storage_type 'local' or 'session', else null. */
export const webStorage = storageType => {
    // Reading window.localStorage itself throws when storage is disabled.
    if (storageType === 'local') {
        return window.localStorage;
    }
    if (storageType === 'session') {
        return window.sessionStorage;
    }
    return null;
};
