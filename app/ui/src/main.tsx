// Entry of the web UI bundle (scripts/build.mjs → dist/ui/main.js and main.css).
import './style.css'
import './legacy-app.js'
