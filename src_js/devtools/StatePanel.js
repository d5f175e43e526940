/*
 * The "Stores" item of Dash's dev tools (debug=True): a button that opens a
 * table of the page's ServerStores with their backend, server-side bytes,
 * browser bytes, TTL left and hit/miss counts, refreshed every second while
 * open, so it follows the callbacks as they run. The server answers only in
 * debug mode (dash_state/glue/devtools.py).
 *
 * The open table is docked at the right edge of the window and the page is
 * narrowed by its width (body margin), so it hides none of the app (a popup
 * over the page used to cover the app's tables); closing it (the button or
 * its x) gives the page its width back.
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
const GAP = 8; // px between the docked panel, the window's edges and the page

// Components that size themselves on window resizes (plotly graphs) follow the page's new width.
const relayout = () => window.dispatchEvent(new Event('resize'));

// Column headers and what they mean (also their tooltips); usage.py's panel uses the same words.
const COLUMNS = [
    ['store', 'the ServerStore id (its family for pattern-matching ids)'],
    ['backend', 'where the value is kept'],
    ['server', 'bytes the server keeps for the store'],
    ['browser', "bytes of the store's data in the browser (the reference)"],
    ['TTL left', 'seconds until the value expires unless written or touched'],
    ['hits', 'reads of the store that found its value (this process)'],
    ['misses', 'reads that found no value: expired, evicted or refused (this process)'],
];

export default class StatePanel extends Component {
    constructor(props) {
        super(props);
        this.state = {open: false, rows: [], error: null};
        this.toggle = this.toggle.bind(this);
        this.refresh = this.refresh.bind(this);
        this._timer = null;
        this._panel = null;
        this._pageMargin = null; // the body's own right margin while the panel narrows the page
    }

    componentDidUpdate() {
        this._dock();
    }

    componentWillUnmount() {
        clearInterval(this._timer);
        this._undock();
    }

    _dock() {
        if (!this.state.open || !this._panel) {
            this._undock();
            return;
        }
        const body = document.body;
        if (this._pageMargin === null) {
            this._pageMargin = body.style.marginRight;
        }
        const width = `${this._panel.offsetWidth + 2 * GAP}px`;
        if (body.style.marginRight !== width) {
            body.style.marginRight = width;
            relayout();
        }
    }

    _undock() {
        if (this._pageMargin !== null) {
            document.body.style.marginRight = this._pageMargin;
            this._pageMargin = null;
            relayout();
        }
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
            <div style={{display: 'inline-block'}}>
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
                        ref={el => {
                            this._panel = el;
                        }}
                        style={{
                            position: 'fixed',
                            top: `${GAP}px`,
                            right: `${GAP}px`,
                            maxHeight: 'calc(100vh - 80px)', // above Dash's dev tools bar
                            background: '#fff',
                            color: '#111827',
                            border: '1px solid #d1d5db',
                            borderRadius: '6px',
                            boxShadow: '0 4px 16px rgba(0,0,0,0.15)',
                            padding: '8px',
                            fontSize: '12px',
                            zIndex: 1100,
                            overflow: 'auto',
                            textAlign: 'left',
                        }}
                    >
                        <div style={{display: 'flex', justifyContent: 'space-between', marginBottom: '6px'}}>
                            <span style={{fontWeight: 600}}>dash-state: ServerStores on this page</span>
                            <button
                                type="button"
                                id="dash-state-devtools-close"
                                title="Close (the page gets its width back)"
                                onClick={this.toggle}
                                style={{border: 'none', background: 'none', cursor: 'pointer', padding: '0 0 0 12px',
                                    fontSize: '14px', lineHeight: 1, color: '#6b7280'}}
                            >
                                ×
                            </button>
                        </div>
                        {error ? <div style={{color: '#b91c1c'}}>{error}</div> : null}
                        <table style={{borderCollapse: 'collapse'}}>
                            <thead>
                                <tr>
                                    {COLUMNS.map(([h, meaning]) => (
                                        <th key={h} title={meaning} style={h === 'store' || h === 'backend' ? LEFT : CELL}>
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
                        <div id="dash-state-devtools-legend" style={{color: '#6b7280', marginTop: '6px', width: 0, minWidth: '100%'}}>
                            Server: {COLUMNS[2][1]}. Browser: {COLUMNS[3][1]}.
                        </div>
                    </div>
                ) : null}
            </div>
        );
    }
}
