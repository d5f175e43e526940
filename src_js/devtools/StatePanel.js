/*
 * The "Stores" item of Dash's dev tools (debug=True): a button that opens a
 * table of the page's ServerStores with their backend, server-side bytes,
 * browser bytes, TTL left and hit/miss counts, refreshed every second while
 * open, so it follows the callbacks as they run. The server answers only in
 * debug mode (dash_state/devtools.py).
 */
import React, {Component} from 'react';
import {postJson} from '../http';
import {mountedStores} from '../renderer';

const REFRESH_MS = 1000;

const human = bytes => {
    if (bytes === null || bytes === undefined) {
        return '-';
    }
    const units = ['B', 'KB', 'MB', 'GB'];
    let n = bytes;
    let unit = 0;
    while (n >= 1024 && unit < units.length - 1) {
        n /= 1024;
        unit += 1;
    }
    return unit ? `${n.toFixed(1)} ${units[unit]}` : `${n} B`;
};

const seconds = s => (s === null || s === undefined ? '-' : `${Math.max(0, Math.round(s))} s`);

const CELL = {padding: '3px 8px', borderBottom: '1px solid #e5e7eb', textAlign: 'right', whiteSpace: 'nowrap'};
const LEFT = {...CELL, textAlign: 'left', fontFamily: 'monospace'};

export default class StatePanel extends Component {
    constructor(props) {
        super(props);
        this.state = {open: false, rows: [], error: null};
        this.toggle = this.toggle.bind(this);
        this.refresh = this.refresh.bind(this);
        this._timer = null;
    }

    componentWillUnmount() {
        clearInterval(this._timer);
    }

    toggle() {
        const open = !this.state.open;
        this.setState({open});
        clearInterval(this._timer);
        if (open) {
            this.refresh();
            this._timer = setInterval(this.refresh, REFRESH_MS);
        }
    }

    async refresh() {
        const stores = mountedStores().map(({id, data}) => ({id, reference: data}));
        try {
            const answer = await postJson('devtools', {stores});
            if (answer.ok && answer.payload && Array.isArray(answer.payload.stores)) {
                this.setState({rows: answer.payload.stores, error: null});
            } else {
                this.setState({error: `HTTP ${answer.status}`});
            }
        } catch (e) {
            this.setState({error: String(e)});
        }
    }

    render() {
        const {open, rows, error} = this.state;
        const count = mountedStores().length;
        return (
            <div style={{position: 'relative', display: 'inline-block'}}>
                <button
                    type="button"
                    id="dash-state-devtools-button"
                    className={`dash-debug-menu__button${open ? ' dash-debug-menu__button--selected' : ''}`}
                    onClick={this.toggle}
                >
                    Stores{count ? ` (${count})` : ''}
                </button>
                {open ? (
                    <div
                        id="dash-state-devtools-panel"
                        style={{
                            position: 'absolute',
                            bottom: '36px',
                            right: 0,
                            background: '#fff',
                            color: '#111827',
                            border: '1px solid #d1d5db',
                            borderRadius: '6px',
                            boxShadow: '0 4px 16px rgba(0,0,0,0.15)',
                            padding: '8px',
                            fontSize: '12px',
                            zIndex: 1100,
                            maxHeight: '60vh',
                            overflow: 'auto',
                        }}
                    >
                        <div style={{fontWeight: 600, marginBottom: '6px'}}>dash-state: ServerStores on this page</div>
                        {error ? <div style={{color: '#b91c1c'}}>{error}</div> : null}
                        <table style={{borderCollapse: 'collapse'}}>
                            <thead>
                                <tr>
                                    {['store', 'backend', 'server', 'browser', 'TTL left', 'hits', 'misses'].map(h => (
                                        <th key={h} style={h === 'store' || h === 'backend' ? LEFT : CELL}>
                                            {h}
                                        </th>
                                    ))}
                                </tr>
                            </thead>
                            <tbody>
                                {rows.map(row => (
                                    <tr key={row.key} className="dash-state-devtools-row">
                                        <td style={LEFT}>{row.label}</td>
                                        <td style={LEFT}>{row.backend || '-'}</td>
                                        <td style={CELL}>{human(row.server_bytes)}</td>
                                        <td style={CELL}>{human(row.browser_bytes)}</td>
                                        <td style={CELL}>{seconds(row.ttl_left)}</td>
                                        <td style={CELL}>{row.hits}</td>
                                        <td style={CELL}>{row.misses}</td>
                                    </tr>
                                ))}
                            </tbody>
                        </table>
                    </div>
                ) : null}
            </div>
        );
    }
}
