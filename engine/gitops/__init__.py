"""GitOps: keep the store in step with a folder or a git ref (``agentform watch``).

    git.py      a git source: clone per URL under <home>/git/, shallow fetch of a ref, checkout,
                credentials through GIT_ASKPASS, bounds (time, size, path inside the checkout)
    sync.py     one sync: apply (which validates first) and record the outcome per app
    watch.py    the loops: watchfiles for a folder, an interval (or a refresh) for git
    status.py   apps with the commit in force and the last error (``get app``)

A commit that does not validate is never applied: the app's last good revision stays in
force, the error is recorded with its commit and time, and the next good commit applies.
"""
