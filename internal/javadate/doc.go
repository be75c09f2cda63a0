// Package javadate writes and reads times with Java date patterns
// (java.text.SimpleDateFormat), as FDL scripts give them: "yyyy-MM-dd
// HH:mm:ss", "dd MMM yyyy", "HH:mm:ss.SSS Z".
//
// The letters understood are G y Y M L d D E u a H k K h m s S z Z X; Y
// (week year) is taken as y and L (stand-alone month) as M. Text between
// single quotes is literal, and two single quotes are one. Names are
// English. Zones are UTC and fixed offsets only: the package reads no time
// zone database.
package javadate
