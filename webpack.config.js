/*
 * Builds dash_state/dash_state.min.js, the bundle Dash serves for this
 * package. React, ReactDOM and PropTypes come from the page (Dash's
 * renderer provides them as globals), so they are externals.
 */
const path = require('path');

module.exports = {
    mode: 'production',
    entry: path.resolve(__dirname, 'src_js', 'index.js'),
    output: {
        path: path.resolve(__dirname, 'dash_state'),
        filename: 'dash_state.min.js',
        library: {
            name: 'dash_state',
            type: 'window',
        },
        // Never clean: dash_state/ also holds the Python package.
        clean: false,
    },
    externals: {
        react: 'React',
        'react-dom': 'ReactDOM',
        'prop-types': 'PropTypes',
    },
    module: {
        rules: [
            {
                test: /\.jsx?$/,
                exclude: /node_modules/,
                use: {loader: 'babel-loader'},
            },
        ],
    },
    resolve: {
        extensions: ['.js', '.jsx'],
    },
    // No source map; deterministic ids so that rebuilds are byte-identical.
    devtool: false,
    optimization: {
        moduleIds: 'deterministic',
        chunkIds: 'deterministic',
    },
    performance: {
        hints: false,
    },
};
