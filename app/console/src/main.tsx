// Entry of the relay console bundle (scripts/build.mjs → dist/console/main.js and main.css).
import { render } from 'preact'
import './style.css'
import { App } from './views/App.js'

render(<App />, document.getElementById('console') as HTMLElement)
