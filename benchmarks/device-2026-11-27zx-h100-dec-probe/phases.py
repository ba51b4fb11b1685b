import sys, statistics as st
for path in sys.argv[1:]:
    R=[[int(x) for x in l.split()[1:]] for l in open(path)]
    ref=min(r[1] for r in R if r[1])
    labels=["entry","wait","span","issued","Q staged","tile landed","scores","softmax","PV(tile0)","loop end","stored"]
    print("==", path, "blocks", len(R))
    for k,lab in enumerate(labels):
        v=[(r[k]-ref)/1000 for r in R if r[k]]
        if v: print("  %-12s median %6.2f  min %6.2f  max %6.2f" % (lab, st.median(v), min(v), max(v)))
