import {Component} from 'react';
import PropTypes from 'prop-types';
import {error, warn} from '../http';
import {heldInBrowser} from '../held';
import {belongsTo, idKey, isReference, isShared, isWellFormed, referenceScope} from '../references';
import {
    currentData,
    looksPatched,
    referenceIn,
    registerStore,
    silentSetData,
    takeAppliedPatch,
    unregisterStore,
} from '../renderer';
import {liveChannel} from '../live';
import {MemoryBackstore, WebBackstore, webStorage} from '../storage';
import {touchScheduler} from '../touch';
import {deleteReference, patchValue, putValue, releaseScheduler} from '../values';

const isNil = value => value === null || value === undefined;

/*
 * JSON text with object keys sorted, used to compare two JSON values
 * regardless of key order.
 */
const canonicalJson = value => {
    if (value === undefined) {
        return 'undefined';
    }
    return JSON.stringify(value, (k, v) => {
        if (v && typeof v === 'object' && !Array.isArray(v)) {
            return Object.keys(v)
                .sort()
                .reduce((acc, key) => {
                    acc[key] = v[key];
                    return acc;
                }, {});
        }
        return v;
    });
};

const sameJson = (a, b) => {
    try {
        return canonicalJson(a) === canonicalJson(b);
    } catch (e) {
        return false;
    }
};

/**
 * ServerStore keeps JSON data in the browser, exactly like dcc.Store
 * (same props, same storage keys and timestamps, same update rules).
 * On the server, dash-state replaces `data` with a short opaque
 * reference to the real value, so only that reference travels to the
 * browser and is kept in memory, sessionStorage or localStorage.
 * While the page is in use, the server keeps that value alive (sliding
 * expiry); once the page is idle or closed, it expires after its TTL. A
 * page that goes away releases the values it held only in memory.
 * clear_data also deletes the server value. A value written in the
 * browser (a clientside callback, running=, a clientside Patch) is sent
 * to the server and replaced by its reference, without firing the
 * store's callbacks again. With scope='user' or 'app', one value is
 * shared by all of a user's pages or by everybody, and live=True brings
 * its changes made elsewhere to this page. It renders nothing.
 */
export default class ServerStore extends Component {
    /* The renderer's context (componentPath), for silent updates. */
    static get contextType() {
        const api = window.dash_component_api;
        return api && api.DashContext ? api.DashContext : undefined;
    }

    constructor(props) {
        super(props);
        this._swapped = undefined;
        this._refusedWrites = false;
        // The last reference of this store it held: the base of a clientside Patch.
        this._reference = isReference(props.data) ? props.data : null;
        // Initial data that arrives as data, not as a reference: the server keeps
        // this store in the browser (the "client" backend), like dcc.Store.
        // The server also lists such stores in Dash's config (held.js), so one
        // that starts empty does not upload its first value to learn it.
        this._clientBackend = (!isNil(props.data) && !isReference(props.data)) || heldInBrowser(props.id);
        this._backstore = null;
        const storage_type = props.storage_type;
        if (storage_type === 'local' || storage_type === 'session') {
            try {
                const storage = webStorage(storage_type);
                if (!storage) {
                    throw new Error(`window.${storage_type}Storage is missing`);
                }
                this._backstore = new WebBackstore(storage);
            } catch (e) {
                this._warnFallback(e);
            }
        }
        if (!this._backstore) {
            this._backstore = new MemoryBackstore();
        }
        this.onStorageChange = this.onStorageChange.bind(this);
        this._listening = false;
    }

    _key() {
        return idKey(this.props.id);  // the storage key, as Dash's stringifyId
    }

    _warnFallback(error) {
        /* eslint-disable no-console */
        console.warn(
            `dash_state ServerStore ${JSON.stringify(this._key())}: ` +
                `${this.props.storage_type}Storage is unavailable ` +
                `(${error && error.name ? error.name : error}: ` +
                `${error && error.message ? error.message : ''}); ` +
                'keeping the data in memory for this component instead.'
        );
        /* eslint-enable no-console */
    }

    /*
     * Run one storage operation; on any error (quota exceeded, storage
     * disabled) warn, switch this instance to memory storage and run it
     * again there.
     */
    _safely(operation) {
        try {
            return operation(this._backstore);
        } catch (e) {
            if (!this._backstore.isWeb) {
                throw e;
            }
            this._warnFallback(e);
            this._backstore = new MemoryBackstore();
            this._stopListening();
            return operation(this._backstore);
        }
    }

    _getItem(key) {
        return this._safely(store => store.getItem(key));
    }

    _setItem(key, value) {
        this._safely(store => store.setItem(key, value));
    }

    _removeItem(key) {
        this._safely(store => store.removeItem(key));
    }

    _getModified(key) {
        return this._safely(store => store.getModified(key));
    }

    _stopListening() {
        if (this._listening) {
            window.removeEventListener('storage', this.onStorageChange);
            this._listening = false;
        }
    }

    onStorageChange(e) {
        const {setProps} = this.props;
        const backstore = this._backstore;
        if (
            !backstore.isWeb ||
            !setProps ||
            e.key !== this._key() ||
            e.newValue === e.oldValue ||
            (e.storageArea && e.storageArea !== backstore.storage)
        ) {
            return;
        }
        let data = null;
        try {
            data = JSON.parse(e.newValue);
        } catch (err) {
            data = null;
        }
        setProps({
            data,
            modified_timestamp: this._getModified(this._key()),
        });
    }

    UNSAFE_componentWillMount() {
        // Same moment as dcc.Store: before the first render, so the stored
        // value reaches the renderer as early as dcc.Store's does.
        const {setProps, data} = this.props;
        const key = this._key();
        const old = this._getItem(key);
        if (isNil(old) && !isNil(data)) {
            this._setItem(key, data);
            if (setProps) {
                setProps({modified_timestamp: this._getModified(key)});
            }
            return;
        }
        // Like dcc.Store, null and undefined differ here: a web store with
        // nothing stored and no `data` reports data=null (timestamp -1).
        if (isReference(old)) {
            this._reference = old;
        }
        if (!sameJson(old, data) && setProps) {
            setProps({data: old, modified_timestamp: this._getModified(key)});
        }
    }

    /*
     * Sliding expiry: while `data` is a reference, the page's scheduler
     * (../touch.js) keeps its server value alive.
     */
    _trackReference(current) {
        const {id} = this.props;
        const data = current === undefined ? this.props.data : current;
        if (isReference(data)) {
            touchScheduler.register(this, id, data);
        } else {
            touchScheduler.unregister(this);
        }
    }

    /* Live updates (../live.js) for a live user or app store whose value is on the server. */
    _followLive() {
        const {live, scope} = this.props;
        liveChannel.follow(this, Boolean(live) && (scope === 'user' || scope === 'app') && !this._clientBackend);
    }

    /* clear_data: delete the server values of the references being cleared. */
    _deleteOnServer(key) {
        const references = new Set(
            [this.props.data, this._getItem(key)].filter(isReference)
        );
        references.forEach(reference => deleteReference(reference, this.props.id));
    }

    componentDidMount() {
        this._registeredKey = this._key();
        registerStore(this, this._registeredKey);
        this._trackReference();
        this._followLive();
        const {storage_type} = this.props;
        if (
            storage_type !== 'memory' &&
            this._backstore.isWeb &&
            !this._listening
        ) {
            window.addEventListener('storage', this.onStorageChange);
            this._listening = true;
        }
    }

    componentWillUnmount() {
        this._stopListening();
        touchScheduler.unregister(this);
        liveChannel.follow(this, false);
        unregisterStore(this, this._registeredKey);
    }

    componentDidUpdate(prevProps) {
        const {data, clear_data, setProps} = this.props;
        const key = this._key();
        if (data !== prevProps.data || clear_data !== prevProps.clear_data) {
            touchScheduler.noteActivity();
        }
        this._followLive();
        if (clear_data) {
            touchScheduler.unregister(this);
            this._deleteOnServer(key);
            this._removeItem(key);
            if (setProps) {
                setProps({
                    clear_data: false,
                    data: null,
                    modified_timestamp: Date.now(),
                });
            }
            return;
        }
        this._trackReference();
        if (data !== prevProps.data) {
            this._release(prevProps.data, data);
            if (this._swapped !== undefined && data === this._swapped) {
                // Our own swap of an uploaded value for its reference: the
                // callbacks already ran with the value; only storage changes.
                this._swapped = undefined;
                this._setItem(key, data);
                return;
            }
            this._sendToServer(prevProps.data, data);
        }
        const old = this._getItem(key);
        if (sameJson(data, old)) {
            return;
        }
        if (data === undefined) {
            if (setProps) {
                setProps({data: old});
            }
            return;
        }
        this._setItem(key, data);
        if (setProps) {
            setProps({modified_timestamp: this._getModified(key)});
        }
    }

    /*
     * What to release when the page goes away ({id, reference}, or null):
     * the reference this store holds, unless it outlives the page (kept in
     * localStorage or sessionStorage, read again after a reload or by other
     * tabs) or is shared (initial layout data, a user or app store's value).
     */
    leavingRelease() {
        const data = currentData(this);
        if (
            this._backstore.isWeb ||
            !isReference(data) ||
            isShared(data) ||
            !belongsTo(data, this._key())
        ) {
            return null;
        }
        return {id: this.props.id, reference: data};
    }

    /* A reference this store no longer holds: its server value can go. */
    _release(old, now) {
        if (isReference(old) && old !== now && !isShared(old) && belongsTo(old, this._key())) {
            releaseScheduler.add(this.props.id, old);
        }
    }

    /*
     * `data` changed to something that is not a reference of this store:
     * a value written in the browser (upload it), a clientside Patch applied
     * to the reference string (apply it on the server), or another store's
     * reference copied by clientside code (which Python cannot read here).
     */
    _sendToServer(previous, data) {
        const {id} = this.props;
        const key = this._key();
        if (isNil(data) || this._clientBackend) {
            return;
        }
        if (isWellFormed(data)) {
            if (belongsTo(data, key)) {
                this._reference = data;
            } else {
                error(
                    `ServerStore ${JSON.stringify(key)} received a reference of another store ` +
                        '(copied by a clientside callback?). A reference is only valid for the ' +
                        'store it was made for, so Python callbacks will read None: copy the value ' +
                        'with a Python callback instead.'
                );
            }
            return;
        }
        const bases = [this._reference, isReference(previous) ? previous : null, referenceIn(data)].filter(
            (base, i, all) => base && belongsTo(base, key) && all.indexOf(base) === i
        );
        for (const base of bases) {
            const operations = takeAppliedPatch(base, data);
            if (operations) {
                this._sendPatch(base, data, operations);
                return;
            }
        }
        const made = referenceIn(data);
        if (made !== null && bases.includes(made)) {
            // The renderer applied a Patch to the reference string, and it is not one we can replay.
            error(
                `ServerStore ${JSON.stringify(key)}: a clientside Patch was applied to this store's ` +
                    'reference and cannot be applied to its value (build it with ' +
                    'dash_clientside.Patch().build(); operations that read the value inside it, such as ' +
                    'append or extend at a nested location, fail in the renderer): the store keeps its ' +
                    'previous value. Return the whole new value, or patch it from a Python callback.'
            );
            this._sendPatch(made, data, []);
            return;
        }
        if (isReference(data)) {
            error(`ServerStore ${JSON.stringify(key)}: ${JSON.stringify(data)} is not a valid reference; ` +
                'Python callbacks will read None.');
            return;
        }
        putValue(id, data).then(
            answer => this._uploaded(data, answer),
            e => warn(`ServerStore ${JSON.stringify(key)}: could not send a value written in the browser:`, e)
        );
    }

    /* Apply `operations` on the server to what `base` stands for; [] keeps the value as it was. */
    _sendPatch(base, patched, operations) {
        const key = this._key();
        // The store's readers already ran with what the renderer made. If the server could not tell that
        // was a patched reference (NaN reaches it as null, clear([]) makes ""), the readers got it as data:
        // they must run again with the real value, so this swap is not silent.
        const lossy = !looksPatched(patched);
        patchValue(this.props.id, base, patched, operations).then(
            answer => {
                if (answer.reference) {
                    this._swapIfStill(patched, answer.reference, lossy);
                    releaseScheduler.add(this.props.id, base);
                } else {
                    error(
                        `ServerStore ${JSON.stringify(key)}: the clientside Patch could not be ` +
                            `applied (${answer.message}); the store keeps its previous value.`
                    );
                    this._swapIfStill(patched, base);
                }
            },
            e => {
                error(`ServerStore ${JSON.stringify(key)}: the clientside Patch could not be sent:`, e);
                this._swapIfStill(patched, base);
            }
        );
    }

    _uploaded(data, answer) {
        const key = JSON.stringify(this._key());
        if (answer.reference) {
            this._swapIfStill(data, answer.reference);
        } else if (answer.client) {
            this._clientBackend = true; // rolled back to the client backend: data stays here
        } else if (answer.status === 403) {
            if (!this._refusedWrites) {
                error(
                    `ServerStore ${key} does not accept values written in the browser ` +
                        `(client_write = false or latest_only): ${answer.message}`
                );
            }
            this._refusedWrites = true;
        } else {
            warn(`ServerStore ${key}: a value written in the browser was not stored: ${answer.message}`);
        }
    }

    /*
     * Replace `expected` (still this store's data?) by `value`, silently if
     * possible: the store's callbacks already ran with the value that `value`
     * stands for. Browser storage gets the reference at once.
     */
    _swapIfStill(expected, value, loud = false) {
        if (!Object.is(currentData(this), expected)) {
            if (isReference(value) && referenceScope(value) === 'c') {
                releaseScheduler.add(this.props.id, value); // a newer value arrived meanwhile
            }
            return;
        }
        this._swapped = value;
        if (isReference(value)) {
            this._reference = value;
        }
        if (!loud && silentSetData(this, value)) {
            this._setItem(this._key(), value);
            this._trackReference(value);
        } else if (this.props.setProps) {
            this._swapped = undefined;
            this.props.setProps({data: value});
        }
    }

    render() {
        return null;
    }
}

ServerStore.defaultProps = {
    storage_type: 'memory',
    scope: 'page',
    live: false,
    writable: false,
    clear_data: false,
    modified_timestamp: -1,
};

ServerStore.propTypes = {
    /**
     * The ID used to identify this component in Dash callbacks; it must be
     * unique in the app. A dict ID (pattern-matching callbacks) works too.
     * Browser storage uses the ID as its key: a string ID as is, a dict ID
     * as its JSON text with the keys sorted.
     */
    id: PropTypes.oneOfType([PropTypes.string, PropTypes.object]).isRequired,

    /**
     * Where the browser keeps `data`:
     * 'memory': in this component only, lost when the page reloads.
     * 'local': window.localStorage, kept after the browser is closed and
     * shared by the tabs of the same origin.
     * 'session': window.sessionStorage, kept for the browser tab's session.
     * If the browser refuses the storage (quota, private mode), this store
     * falls back to 'memory' and logs a warning.
     */
    storage_type: PropTypes.oneOf(['local', 'session', 'memory']),

    /**
     * The stored value: any JSON value, as with dcc.Store. A pandas
     * DataFrame, a pandas Series or a numpy array is accepted too, as the
     * whole value (not nested in a dict or list), and Python callbacks get
     * it back as the same type (on the 'client' backend it travels through
     * the browser in a typed JSON form). On a server backend this prop
     * holds, in the browser, a short opaque reference that stands for the
     * value kept on the server. A store that a clientside callback uses
     * is mirrored: the browser holds its data, as with dcc.Store.
     */
    data: PropTypes.oneOfType([
        PropTypes.object,
        PropTypes.array,
        PropTypes.number,
        PropTypes.string,
        PropTypes.bool,
    ]),

    /**
     * Set to True to delete the stored value: `data` becomes None and
     * `clear_data` goes back to False.
     */
    clear_data: PropTypes.bool,

    /**
     * When the stored value last changed, in milliseconds since the epoch
     * (-1 if never).
     */
    modified_timestamp: PropTypes.number,

    /**
     * Whose value this store holds:
     * 'page': one value per page, as dcc.Store (the default).
     * 'user': one value per user, shared by all their tabs, browsers and
     * devices.
     * 'app': one value for everyone, held once on the server (callbacks
     * may write it only with writable=True).
     * The server's config can override it per store
     * ([STATE_STORES.<id>] scope = ...).
     */
    scope: PropTypes.oneOf(['page', 'user', 'app']),

    /**
     * On a 'user' or 'app' store: when the value changes anywhere (another
     * tab, worker or host), this page gets the new value and the store's
     * callbacks fire, as if a callback on this page had written it.
     */
    live: PropTypes.bool,

    /**
     * On an 'app' store: callbacks may write it.
     */
    writable: PropTypes.bool,

    /**
     * Dash-assigned callback that reports prop changes to the renderer.
     */
    setProps: PropTypes.func,
};
