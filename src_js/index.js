/*
 * Library entry point: everything exported here becomes a property of
 * window.dash_state, where Dash's renderer looks components up by type.
 * Add further exports (components or helpers) to the export list below.
 */
import ServerStore from './components/ServerStore.react';

export {ServerStore};
