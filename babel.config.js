/*
 * Explicit browser targets (the ones Dash 4 supports) instead of a
 * browserslist query, so the output does not depend on caniuse data.
 */
module.exports = {
    presets: [
        [
            '@babel/preset-env',
            {
                targets: {
                    chrome: '90',
                    edge: '90',
                    firefox: '90',
                    safari: '14',
                },
            },
        ],
        ['@babel/preset-react', {runtime: 'classic'}],
    ],
};
