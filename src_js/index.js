/*
 * Library entry point: everything exported here becomes a property of
 * window.dash_state, where Dash's renderer looks components up by type.
 * Add further exports (components or helpers) to the export list below.
 *
 * - ServerStore: the component.
 * - get(reference, id): a Promise of the data behind a ServerStore's
 *   reference, for clientside callbacks (see ./values.js).
 * - StatePanel: the "Stores" item of Dash's dev tools (debug=True).
 * - liveStatus(): the state of the page's live channel (./live.js), for tests:
 *   {transport: 'sse' | 'poll' | null, connected, messages, reconnects}.
 */
import ServerStore from './components/ServerStore.react';
import StatePanel from './devtools/StatePanel';
import {liveStatus} from './live';
import {get} from './values';

export {ServerStore, StatePanel, get, liveStatus};
