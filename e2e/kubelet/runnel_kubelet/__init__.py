"""runnel-e2e-kubelet: a small kubelet for Runnel's end-to-end tests.

It talks to a real kube-apiserver and runs pods whose image is Runnel's as
local processes of freshly built binaries, each in its own network, mount and
UTS namespace. See e2e/README.md for what it does and does not do.
"""
