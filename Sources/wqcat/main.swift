// The whole program lives in WQCat; this file only starts it, so it holds no state.
WQCat.runAndExit()
